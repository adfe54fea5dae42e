package cron

import (
	"strings"
	"testing"
)

// FuzzEditCrontab checks the editing contract on arbitrary tables: foreign lines survive byte for
// byte (a missing final line break may be added before appended lines), the wanted lines are
// present exactly once, and a second edit changes nothing.
func FuzzEditCrontab(f *testing.F) {
	f.Add("#min hour\n1 1 * * * /sbin/tmpwatch.py\n", "0 2 * * *")
	f.Add("0 4 * * * /bin/echo no final newline", "@hourly")
	f.Add("5 5 * * * x #snapferry:a\n5 5 * * * y #snapferry:a\r\n#snapferry:b\n", "*/5 * * * 1-5")
	f.Add("", "@daily")
	f.Add("\n\n#snapferry:\n x#snapferry:a\n", "0 0 1 1 *")
	f.Fuzz(func(t *testing.T, text, sched string) {
		if _, err := ParseSchedule(sched); err != nil {
			return
		}
		entries, err := CrontabLines([]Job{
			{Name: "a", Schedule: sched, Args: []string{"check"}},
			{Name: "b", Schedule: sched, Args: []string{"backup"}},
		}, LineOptions{Binary: "/opt/snap ferry", Home: "/h%1"})
		if err != nil {
			t.Fatal(err)
		}
		got := EditCrontab(text, entries)
		if again := EditCrontab(got, entries); again != got {
			t.Fatalf("not idempotent:\n%q\n%q", got, again)
		}
		foreignIn, foreignOut := withoutOwned(text), withoutOwned(got)
		if foreignOut != foreignIn && foreignOut != foreignIn+"\n" {
			t.Fatalf("foreign lines changed:\n%q\n%q", foreignIn, foreignOut)
		}
		for _, e := range entries {
			if n := strings.Count(got, e.Line+"\n"); n != 1 {
				t.Fatalf("line of %s appears %d times in %q", e.Name, n, got)
			}
		}
		if back := EditCrontab(got, nil); back != foreignOut {
			t.Fatalf("removing all lines left %q, want %q", back, foreignOut)
		}
	})
}
