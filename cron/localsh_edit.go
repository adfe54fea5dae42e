package cron

import (
	"fmt"
	"strings"
)

// The stanza snapferry owns in /etc/rc.local.d/local.sh lies between these two lines.
const (
	StanzaBegin = "# >>> snapferry: managed by 'snapferry cron install --persist'; edits between these markers are overwritten"
	StanzaEnd   = "# <<< snapferry"
	stanzaTag   = "# >>> snapferry"
)

// DefaultLocalSh is ESXi's boot script, the only place that can re-create crontab lines and
// firewall rules after a reboot (it does not run under UEFI Secure Boot).
const DefaultLocalSh = "/etc/rc.local.d/local.sh"

// EditLocalSh returns text with snapferry's stanza set to body (shell lines without line
// breaks). An existing stanza is replaced where it stands; otherwise the stanza goes before the
// script's final `exit 0` (ESXi's stock local.sh ends with one, and anything after it never
// runs), or at the end when there is none. An empty body removes the stanza. Lines outside the
// stanza are kept byte for byte and applying the same body twice changes nothing.
func EditLocalSh(text string, body []string) (string, error) {
	var block string
	if len(body) > 0 {
		block = StanzaBegin + "\n" + strings.Join(body, "\n") + "\n" + StanzaEnd + "\n"
	}
	lines := splitLines(text)
	begin, end := -1, -1
	for i, l := range lines {
		t := strings.TrimRight(l.text, " \t\r")
		switch {
		case strings.HasPrefix(t, stanzaTag):
			if begin >= 0 {
				return "", fmt.Errorf("edit local.sh: two snapferry stanzas start (lines %d and %d); remove one by hand", begin+1, i+1)
			}
			begin = i
		case t == StanzaEnd && begin >= 0 && end < 0:
			end = i
		}
	}
	if begin >= 0 && end < 0 {
		return "", fmt.Errorf("edit local.sh: the snapferry stanza starting at line %d has no end marker %q; fix it by hand", begin+1, StanzaEnd)
	}
	join := func(ls []textLine) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(l.text + l.end)
		}
		return b.String()
	}
	if begin >= 0 {
		return join(lines[:begin]) + block + join(lines[end+1:]), nil
	}
	if block == "" {
		return text, nil
	}
	// The final exit: the last line that is not blank or a comment, if it is `exit 0`.
	at := len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		t := strings.TrimSpace(lines[i].text)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if t == "exit 0" {
			at = i
		}
		break
	}
	head := join(lines[:at])
	if head != "" && !strings.HasSuffix(head, "\n") {
		head += "\n"
	}
	if at == len(lines) && head == "" {
		head = "#!/bin/sh\n" // a file without #! is treated as a binary on ESXi
	}
	return head + block + join(lines[at:]), nil
}
