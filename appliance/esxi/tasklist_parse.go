package esxi

import (
	"fmt"
	"regexp"
	"strings"
)

// Task is one running host task from `vim-cmd vmsvc/get.tasklist ID`.
type Task struct {
	ID string // "haTask-512-vim.VirtualMachine.powerOn-2826"
	Op string // "powerOn", "createSnapshot"...; "" when the id has another shape
}

var (
	taskRe   = regexp.MustCompile(`^\s*'vim\.Task:([^']+)',?\s*$`)
	taskOpRe = regexp.MustCompile(`vim\.VirtualMachine\.([A-Za-z0-9_]+)-\d+$`)
)

// ParseTaskList parses get.tasklist output:
//
//	(ManagedObjectReference) [
//	  'vim.Task:haTask-512-vim.VirtualMachine.powerOn-2826',
//	]
//
// or "(ManagedObjectReference) []" when nothing runs.
func ParseTaskList(out string) ([]Task, error) {
	if f := ParseFault(out); f != nil {
		return nil, fmt.Errorf("parse task list: %w", f)
	}
	lines := splitLines(out)
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "(ManagedObjectReference) [") {
		return nil, fmt.Errorf("parse task list: output does not start with \"(ManagedObjectReference) [\": %q", oneLine(out))
	}
	if strings.TrimSpace(lines[0]) == "(ManagedObjectReference) []" {
		return nil, nil
	}
	var tasks []Task
	closed := false
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "]" {
			closed = true
			break
		}
		m := taskRe.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("parse task list: unexpected line %q", l)
		}
		t := Task{ID: m[1]}
		if om := taskOpRe.FindStringSubmatch(m[1]); om != nil {
			t.Op = om[1]
		}
		tasks = append(tasks, t)
	}
	if !closed {
		return nil, fmt.Errorf("parse task list: no closing ]")
	}
	return tasks, nil
}
