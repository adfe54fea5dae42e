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
	var (
		snaps     []appliance.SnapshotInfo
		stack     []string // ids of the current node's ancestors, by level
		lastField string   // the field that unprefixed lines continue
		perLevel  = map[int]int{}
	)
	finish := func() error {
		if len(snaps) == 0 {
			return nil
		}
		s := &snaps[len(snaps)-1]
		if s.ID == "" || s.Name == "" {
			return fmt.Errorf("parse snapshot.get: snapshot at level %d has no Name or Id", s.Level)
		}
		return nil
	}
	for n, line := range lines[start+1:] {
		lineNo := start + 2 + n
		if m := snapNodeRe.FindStringSubmatch(line); m != nil {
			if err := finish(); err != nil {
				return nil, err
			}
			level := len(m[1]) / 2
			if (level == 0) != (m[2] == "ROOT") || level > len(stack) {
				return nil, fmt.Errorf("parse snapshot.get: line %d %q: %s at level %d does not fit the tree", lineNo, line, m[2], level)
			}
			s := appliance.SnapshotInfo{Level: level, Index: perLevel[level]}
			perLevel[level]++
			if level > 0 {
				s.Parent = stack[level-1]
			}
			stack = stack[:level]
			snaps = append(snaps, s)
			lastField = ""
			continue
		}
		if m := snapFieldRe.FindStringSubmatch(line); m != nil && len(snaps) > 0 {
			s := &snaps[len(snaps)-1]
			if len(m[1])/2 != s.Level+1 {
				return nil, fmt.Errorf("parse snapshot.get: line %d %q: field prefix does not match level %d", lineNo, line, s.Level)
			}
			v := strings.TrimRight(m[3], " \t")
			lastField = m[2]
			switch m[2] {
			case "Name":
				s.Name = v
			case "Id":
				if _, err := strconv.ParseUint(v, 10, 64); err != nil {
					return nil, fmt.Errorf("parse snapshot.get: line %d: snapshot id %q is not a number", lineNo, v)
				}
				s.ID = v
				stack = append(stack[:s.Level], v)
			case "Desciption", "Description":
				s.Description = v
			case "Created On":
				t, err := ParseSnapshotTime(v)
				if err != nil {
					return nil, fmt.Errorf("parse snapshot.get: line %d: %w", lineNo, err)
				}
				s.Created = t
			case "State":
				s.State = v
			}
			continue
		}
		if len(snaps) == 0 || lastField == "" {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return nil, fmt.Errorf("parse snapshot.get: line %d %q is not part of the tree", lineNo, line)
		}
		// An unprefixed line continues the last field: multi-line descriptions (and names).
		s := &snaps[len(snaps)-1]
		switch lastField {
		case "Desciption", "Description":
			s.Description += "\n" + strings.TrimRight(line, " \t")
		case "Name":
			s.Name += "\n" + strings.TrimRight(line, " \t")
		default:
			return nil, fmt.Errorf("parse snapshot.get: line %d %q continues field %s, which is one line", lineNo, line, lastField)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	for i := range snaps {
		snaps[i].Description = strings.TrimRight(snaps[i].Description, "\n")
	}
	return snaps, nil
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
