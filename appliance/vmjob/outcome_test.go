package vmjob

import (
	"errors"
	"testing"
)

func TestSummarize(t *testing.T) {
	ok := Result{Committed: true}
	partial := Result{Committed: true, Partial: true}
	failed := Result{Err: errors.New("boom")}
	leftover := Result{Committed: true, Err: errors.New("remove our VM snapshot")}
	for _, c := range []struct {
		name string
		in   []Result
		want Outcome
	}{
		{"all ok", []Result{ok, ok}, AllDone},
		{"one partial", []Result{ok, partial}, Partial},
		{"one failed", []Result{failed, ok}, Partial},
		{"committed but snapshot left", []Result{leftover}, Partial},
		{"all failed", []Result{failed, failed}, Failed},
		{"nothing selected", nil, Failed},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
