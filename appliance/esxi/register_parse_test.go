package esxi

import (
	"errors"
	"reflect"
	"testing"

	"github.com/snapferry/snapferry/appliance"
)

func TestRegisterAndFaultsReference(t *testing.T) {
	s := samples(t, "register.txt", false)
	if id, err := ParseRegister(s[0].Body); err != nil || id != "15" {
		t.Errorf("registervm sample: got %q, %v; want 15", id, err)
	}
	if id, err := ParseRegister(""); err != nil || id != "" {
		t.Errorf("registervm on an older host (no output): got %q, %v", id, err)
	}
	_, err := ParseRegister(sample(t, "register.txt", "older hosts print nothing", false))
	var f *Fault
	if !errors.As(err, &f) || !errors.Is(err, appliance.ErrAlreadyExists) || f.Fields["name"] != "51" {
		t.Errorf("AlreadyExists: got %v (%+v)", err, f)
	}
	unreg := sample(t, "register.txt", "vmsvc/unregister", false)
	f = ParseFault(unreg)
	if f == nil || !errors.Is(f, appliance.ErrNotFound) ||
		f.Msg != `Unable to find a VM corresponding to "/vmfs/volumes/datastore1/x/x.vmx"` {
		t.Errorf("unregister NotFound parsed as %+v", f)
	}
	if _, err := ParseRegister("Hello\n"); err == nil {
		t.Error("ParseRegister(Hello): want an error")
	}
}

func TestParseTaskListReference(t *testing.T) {
	got, err := ParseTaskList(sample(t, "register.txt", "get.tasklist", false))
	want := []Task{
		{ID: "haTask-512-vim.VirtualMachine.powerOn-2826", Op: "powerOn"},
		{ID: "haTask-112-vim.VirtualMachine.createSnapshot-3887", Op: "createSnapshot"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("tasklist: got %+v, %v", got, err)
	}
	got, err = ParseTaskList(sample(t, "register.txt", "no tasks", false))
	if err != nil || len(got) != 0 {
		t.Errorf("empty tasklist: got %+v, %v", got, err)
	}
	for _, bad := range []string{"", "(ManagedObjectReference) [\n  'vim.Task:x',\n", "[]\n", "(ManagedObjectReference) [\n  oops\n]\n"} {
		if _, err := ParseTaskList(bad); err == nil {
			t.Errorf("ParseTaskList(%q): want an error", bad)
		}
	}
}

func FuzzParseFault(f *testing.F) {
	addSeeds(f, false, "register.txt", "power.txt")
	f.Fuzz(func(t *testing.T, out string) {
		if fl := ParseFault(out); fl != nil && (fl.Type == "" || fl.Error() == "") {
			t.Fatalf("fault without type from %q", out)
		}
		_, _ = ParseRegister(out)
		if tasks, err := ParseTaskList(out); err == nil {
			for _, task := range tasks {
				if task.ID == "" {
					t.Fatalf("empty task id from %q", out)
				}
			}
		}
	})
}
