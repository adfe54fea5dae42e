package esxi

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
)

var (
	snapNodeRe  = regexp.MustCompile(`^((?:--)*)\|-(ROOT|CHILD)\s*$`)
	snapFieldRe = regexp.MustCompile(`^((?:--)+)Snapshot (Name|Id|Desciption|Description|Created On|State)\s*: ?(.*)$`)
)

// ParseSnapshotGet parses `vim-cmd vmsvc/snapshot.get ID` (and the tree that snapshot.remove
// prints after "Remove Snapshot:"). Each tree level adds "--"; the host's quirks are kept:
// "Desciption" is misspelled, "Snapshot Id" has its own padding, dates are not zero-padded, and a
// multi-line description continues on unprefixed lines. The result is in tree order with Parent,
// Level and Index filled in (Level/Index are what older snapshot.remove syntaxes take).
func ParseSnapshotGet(out string) ([]appliance.SnapshotInfo, error) {
	if f := ParseFault(out); f != nil {
		return nil, fmt.Errorf("parse snapshot.get: %w", f)
	}
	lines := splitLines(out)
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "Get Snapshot:" {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("parse snapshot.get: no \"Get Snapshot:\" line in %q", oneLine(out))
	}
	p := &snapTreeParser{perLevel: map[int]int{}}
	for n, line := range lines[start+1:] {
		if err := p.line(start+2+n, line); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	for i := range p.snaps {
		p.snaps[i].Description = strings.TrimRight(p.snaps[i].Description, "\n")
	}
	return p.snaps, nil
}

// snapTreeParser is ParseSnapshotGet's state between lines: the snapshots so far, the node
// being filled in being the last.
type snapTreeParser struct {
	snaps     []appliance.SnapshotInfo
	stack     []string // ids of the current node's ancestors, by level
	lastField string   // the field that unprefixed lines continue
	perLevel  map[int]int
}

// line takes one line of the tree: a node, a field of the current node, or the continuation of
// its last field.
func (p *snapTreeParser) line(lineNo int, line string) error {
	if m := snapNodeRe.FindStringSubmatch(line); m != nil {
		return p.node(lineNo, line, m)
	}
	if m := snapFieldRe.FindStringSubmatch(line); m != nil && len(p.snaps) > 0 {
		return p.field(lineNo, line, m)
	}
	return p.continuation(lineNo, line)
}

// finish checks the node just completed: every snapshot has a name and an id.
func (p *snapTreeParser) finish() error {
	if len(p.snaps) == 0 {
		return nil
	}
	s := &p.snaps[len(p.snaps)-1]
	if s.ID == "" || s.Name == "" {
		return fmt.Errorf("parse snapshot.get: snapshot at level %d has no Name or Id", s.Level)
	}
	return nil
}

// node starts a snapshot at the level its "--" prefix gives; it must fit under the nodes so far.
func (p *snapTreeParser) node(lineNo int, line string, m []string) error {
	if err := p.finish(); err != nil {
		return err
	}
	level := len(m[1]) / 2
	if (level == 0) != (m[2] == "ROOT") || level > len(p.stack) {
		return fmt.Errorf("parse snapshot.get: line %d %q: %s at level %d does not fit the tree", lineNo, line, m[2], level)
	}
	s := appliance.SnapshotInfo{Level: level, Index: p.perLevel[level]}
	p.perLevel[level]++
	if level > 0 {
		s.Parent = p.stack[level-1]
	}
	p.stack = p.stack[:level]
	p.snaps = append(p.snaps, s)
	p.lastField = ""
	return nil
}

// field sets one field of the current snapshot.
func (p *snapTreeParser) field(lineNo int, line string, m []string) error {
	s := &p.snaps[len(p.snaps)-1]
	if len(m[1])/2 != s.Level+1 {
		return fmt.Errorf("parse snapshot.get: line %d %q: field prefix does not match level %d", lineNo, line, s.Level)
	}
	v := strings.TrimRight(m[3], " \t")
	p.lastField = m[2]
	switch m[2] {
	case "Name":
		s.Name = v
	case "Id":
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("parse snapshot.get: line %d: snapshot id %q is not a number", lineNo, v)
		}
		s.ID = v
		p.stack = append(p.stack[:s.Level], v)
	case "Desciption", "Description":
		s.Description = v
	case "Created On":
		t, err := ParseSnapshotTime(v)
		if err != nil {
			return fmt.Errorf("parse snapshot.get: line %d: %w", lineNo, err)
		}
		s.Created = t
	case "State":
		s.State = v
	}
	return nil
}

// continuation takes an unprefixed line: blank before the tree, or the next line of a
// multi-line description (or name).
func (p *snapTreeParser) continuation(lineNo int, line string) error {
	if len(p.snaps) == 0 || p.lastField == "" {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		return fmt.Errorf("parse snapshot.get: line %d %q is not part of the tree", lineNo, line)
	}
	s := &p.snaps[len(p.snaps)-1]
	switch p.lastField {
	case "Desciption", "Description":
		s.Description += "\n" + strings.TrimRight(line, " \t")
	case "Name":
		s.Name += "\n" + strings.TrimRight(line, " \t")
	default:
		return fmt.Errorf("parse snapshot.get: line %d %q continues field %s, which is one line", lineNo, line, p.lastField)
	}
	return nil
}

// ParseSnapshotTime parses the host's unpadded "11/29/2017 23:59:6" (month/day/year, 24h) as a
// local time without zone (the host's clock).
func ParseSnapshotTime(s string) (time.Time, error) {
	t, err := time.Parse("1/2/2006 15:4:5", strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("snapshot time %q is not M/D/YYYY H:M:S: %w", s, err)
	}
	return t, nil
}

// FormatSnapshotTime prints a time the way snapshot.get does: no zero padding anywhere.
func FormatSnapshotTime(t time.Time) string {
	return fmt.Sprintf("%d/%d/%d %d:%d:%d", int(t.Month()), t.Day(), t.Year(), t.Hour(), t.Minute(), t.Second())
}

// RemoveSyntax is the argument order a host's snapshot.remove takes.
type RemoveSyntax int

const (
	// RemoveByID: snapshot.remove vmid snapshotId [removeChildren] (newer hosts).
	RemoveByID RemoveSyntax = iota
	// RemoveByLevel: snapshot.remove vmid [removeChildren] [snapshotLevel] [snapshotIndex] (older).
	RemoveByLevel
)

// ParseRemoveUsage tells the syntaxes apart by whether the usage text mentions snapshotId.
func ParseRemoveUsage(usage string) (RemoveSyntax, error) {
	switch {
	case strings.Contains(usage, "snapshotId"):
		return RemoveByID, nil
	case strings.Contains(usage, "snapshotLevel") || strings.Contains(usage, "removeChildren"):
		return RemoveByLevel, nil
	}
	return RemoveByID, fmt.Errorf("parse snapshot.remove usage: neither snapshotId nor snapshotLevel in %q", oneLine(usage))
}

// RemoveArgs returns the vim-cmd arguments that remove snap (not its children) in a syntax.
func RemoveArgs(syntax RemoveSyntax, vmid string, snap appliance.SnapshotInfo) []string {
	if syntax == RemoveByLevel {
		return []string{"vmsvc/snapshot.remove", vmid, "0", strconv.Itoa(snap.Level), strconv.Itoa(snap.Index)}
	}
	return []string{"vmsvc/snapshot.remove", vmid, snap.ID, "0"}
}
