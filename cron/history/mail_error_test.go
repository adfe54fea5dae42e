package history

import (
	"context"
	"strings"
	"testing"
)

// A report mail that could not be sent is noted on the newest job of that name: its result stays
// what the job did, and the failure shows beside it.
func TestNoteMailFailure(t *testing.T) {
	ctx := context.Background()
	l, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Record{
		{Job: "j1", Name: "nightly", State: StateDone, Exit: ExitCode(0)},
		{Job: "j2", Name: "nightly", State: StateActive},
		{Job: "j2", Name: "nightly", State: StateDone, Exit: ExitCode(3)},
		{Job: "j3", Name: "other", State: StateDone, Exit: ExitCode(0)},
	} {
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.NoteMailFailure(ctx, "nightly", "dial mail:587: connection refused"); err != nil {
		t.Fatal(err)
	}
	jobs, err := l.Jobs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Job{}
	for _, j := range jobs {
		got[j.ID] = j
	}
	if j := got["j2"]; !strings.Contains(j.MailError, "connection refused") || j.Result() != ResultPartial || j.Ended.IsZero() {
		t.Fatalf("newest nightly job after the note: %+v (result %s)", j, j.Result())
	}
	if got["j1"].MailError != "" || got["j3"].MailError != "" {
		t.Fatalf("the note landed on another job: %+v", jobs)
	}
	if err := l.NoteMailFailure(ctx, "never-ran", "x"); err == nil {
		t.Fatal("a note for a job without history succeeded")
	}
}
