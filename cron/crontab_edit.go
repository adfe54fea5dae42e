package cron

import (
	"fmt"
	"regexp"
	"strings"
)

// MarkerPrefix starts the trailing comment that marks a crontab line as snapferry's own.
const MarkerPrefix = "#snapferry:"

// suspendedPrefix comments out a line of a suspended schedule while keeping it recognisable.
const suspendedPrefix = "#suspended# "

// markerRe finds the owner marker at the end of a line (trailing blanks and a CR allowed, so a
// crontab saved with DOS line ends is still recognised).
var markerRe = regexp.MustCompile(`(?:^|[ \t])#snapferry:([A-Za-z0-9._-]+)[ \t\r]*$`)

// CrontabEntry is one line snapferry owns in a crontab.
type CrontabEntry struct {
	Name string
	Line string // the whole line, marker included, without the line break
}

// LineOptions say how a crontab line starts snapferry.
type LineOptions struct {
	// Binary is the absolute path of the snapferry binary (on ESXi, on a datastore).
	Binary string
	// Home is the state folder passed as --home, so the cron run finds the same jobs file.
	Home string
	// Suspended writes the line commented out.
	Suspended bool
}

// CrontabLine renders the crontab line for job: its schedule fields, then
// `BINARY --home=HOME cron run NAME`, output to /dev/null (the run writes its own per-job log;
// busybox crond would otherwise try to mail it), then the owner marker.
func CrontabLine(job Job, o LineOptions) (CrontabEntry, error) {
	if err := job.Validate(); err != nil {
		return CrontabEntry{}, err
	}
	if !strings.HasPrefix(o.Binary, "/") {
		return CrontabEntry{}, fmt.Errorf("crontab line for job %s: binary path %q is not absolute; crond runs with a minimal PATH", job.Name, o.Binary)
	}
	if o.Home != "" && !strings.HasPrefix(o.Home, "/") {
		return CrontabEntry{}, fmt.Errorf("crontab line for job %s: home folder %q is not absolute; crond starts in another folder", job.Name, o.Home)
	}
	for what, v := range map[string]string{"binary path": o.Binary, "home folder": o.Home} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return CrontabEntry{}, fmt.Errorf("crontab line for job %s: %s %q contains a line break or NUL", job.Name, what, v)
		}
	}
	s, _ := job.ParsedSchedule() // validated above
	args := []string{o.Binary}
	if o.Home != "" {
		args = append(args, "--home="+o.Home)
	}
	args = append(args, "cron", "run", job.Name)
	line := s.CrontabFields() + " " + QuoteCrontabCommand(args) + " >/dev/null 2>&1 " + MarkerPrefix + job.Name
	if o.Suspended {
		line = suspendedPrefix + line
	}
	return CrontabEntry{Name: job.Name, Line: line}, nil
}

// CrontabLines renders the entries of all jobs in order.
func CrontabLines(jobs []Job, o LineOptions) ([]CrontabEntry, error) {
	out := make([]CrontabEntry, 0, len(jobs))
	for _, j := range jobs {
		e, err := CrontabLine(j, o)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// OwnedCrontabLine returns the job name of a line snapferry owns.
func OwnedCrontabLine(line string) (string, bool) {
	m := markerRe.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// EditCrontab returns text with snapferry's lines set to entries and every other line kept byte
// for byte. An owned line whose job is still wanted is replaced where it stands (so a hand-made
// order survives); owned lines of jobs not in entries are removed, including duplicates; new
// entries are appended at the end. Applying the same entries twice changes nothing.
func EditCrontab(text string, entries []CrontabEntry) string {
	want := make(map[string]string, len(entries))
	for _, e := range entries {
		want[e.Name] = e.Line
	}
	done := make(map[string]bool, len(entries))
	lines := splitLines(text)
	out := make([]string, 0, len(lines)+len(entries))
	for _, l := range lines {
		name, owned := OwnedCrontabLine(l.text)
		if !owned {
			out = append(out, l.text+l.end)
			continue
		}
		if nl, ok := want[name]; ok && !done[name] {
			out = append(out, nl+"\n")
			done[name] = true
		}
	}
	for _, e := range entries {
		if done[e.Name] {
			continue
		}
		if n := len(out); n > 0 && !strings.HasSuffix(out[n-1], "\n") {
			out[n-1] += "\n" // crond ignores a last line without a line break
		}
		out = append(out, e.Line+"\n")
		done[e.Name] = true
	}
	return strings.Join(out, "")
}

type textLine struct{ text, end string }

// splitLines splits text into lines keeping each line's terminator ("" for a last line without
// one), so joining text+end of every line gives the input back exactly.
func splitLines(text string) []textLine {
	var out []textLine
	for text != "" {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			out = append(out, textLine{text: text})
			break
		}
		out = append(out, textLine{text: text[:i], end: "\n"})
		text = text[i+1:]
	}
	return out
}
