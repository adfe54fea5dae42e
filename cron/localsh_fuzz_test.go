package cron

import (
	"strings"
	"testing"
)

// FuzzEditLocalSh checks the local.sh contract on arbitrary scripts without a stanza: the stanza
// is added once, a second edit changes nothing, removing it gives the script back (plus at most a
// final line break, or "#!/bin/sh" for an empty file) and it never lands after a final exit 0.
func FuzzEditLocalSh(f *testing.F) {
	f.Add("#!/bin/sh\n\n# comment\n\nexit 0\n")
	f.Add("#!/bin/sh\nexit 0")
	f.Add("")
	f.Add("echo a\nexit 0\n# trailing comment\n\n")
	f.Add("[ -x /x ] && exit 0\necho b")
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, stanzaTag) || strings.Contains(text, StanzaEnd) {
			return
		}
		body := PersistStanza(PersistOptions{Binary: "/vmfs/volumes/ds 1/snapferry", Home: "/vmfs/volumes/ds 1/var"})
		got, err := EditLocalSh(text, body)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := EditLocalSh(got, body); err != nil || again != got {
			t.Fatalf("not idempotent (%v):\n%q\n%q", err, got, again)
		}
		if n := strings.Count(got, StanzaBegin); n != 1 {
			t.Fatalf("%d stanzas in %q", n, got)
		}
		back, err := EditLocalSh(got, nil)
		if err != nil || (back != text && back != text+"\n" && back != "#!/bin/sh\n"+text) {
			t.Fatalf("removal gave %q from %q (%v)", back, text, err)
		}
		if finalExit(text) && !finalExit(got[strings.Index(got, StanzaEnd)+len(StanzaEnd):]) {
			t.Fatalf("stanza after the final exit 0:\n%s", got)
		}
	})
}

// finalExit reports whether the last line that is not blank or a comment is `exit 0`.
func finalExit(text string) bool {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return l == "exit 0"
	}
	return false
}
