package vib

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// splitVersion splits "1.2.3-1.0.0" into its version and release parts; both must be dotted
// runs of letters and digits, as ESXi's version strings are.
func splitVersion(v string) (version, release string, err error) {
	version, release, ok := strings.Cut(v, "-")
	if !ok || !dotted.MatchString(version) || !dotted.MatchString(release) {
		return "", "", fmt.Errorf("version %q: want VERSION-RELEASE like 1.2.3-1.0.0", v)
	}
	return version, release, nil
}

var dotted = regexp.MustCompile(`^[0-9A-Za-z]+(\.[0-9A-Za-z]+)*$`)

// Compare orders two VIB versions as ESXi does when it decides between upgrade, downgrade and
// "already installed": the version part first, then the release part, each compared one dotted
// component at a time, numerically where both components are numbers; a missing component
// sorts first ("1.2" < "1.2.0"). It returns -1, 0 or 1. Malformed strings compare as text.
func Compare(a, b string) int {
	av, ar, errA := splitVersion(a)
	bv, br, errB := splitVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	if c := compareDotted(av, bv); c != 0 {
		return c
	}
	return compareDotted(ar, br)
}

func compareDotted(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errX := strconv.ParseUint(as[i], 10, 64)
		y, errY := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case errX == nil && errY == nil:
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case as[i] != bs[i]:
			return strings.Compare(as[i], bs[i])
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}

var describeRE = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+){0,3})(?:-([0-9]+)-g[0-9a-f]+)?(-dirty)?$`)
var hashRE = regexp.MustCompile(`^(?:[0-9a-f]{4,40}|dev)(-dirty)?$`)

// VersionFromDescribe maps `git describe --tags --always --dirty` output onto a VIB version
// that ESXi orders like the commits: a tag v1.2.3 gives 1.2.3-1.0.0, N commits after it
// 1.2.3-1.N.0, and uncommitted changes (-dirty) add 1 to the last release component so such a
// build upgrades the clean build of the same commit. Without a tag (a bare commit hash, or
// "dev"), commits (git rev-list --count HEAD) orders builds: 0.0.0-0.COMMITS.0. Any other tag
// shape is an error naming the accepted forms, rather than a version that might sort wrong.
func VersionFromDescribe(describe string, commits int) (string, error) {
	dirty := 0
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		n := 0
		if m[2] != "" {
			var err error
			if n, err = strconv.Atoi(m[2]); err != nil {
				return "", fmt.Errorf("version %q: commit count %q: %w", describe, m[2], err)
			}
		}
		if m[3] != "" {
			dirty = 1
		}
		return fmt.Sprintf("%s-1.%d.%d", m[1], n, dirty), nil
	}
	if m := hashRE.FindStringSubmatch(describe); m != nil {
		if commits < 0 {
			return "", fmt.Errorf("version %q has no release tag: give the commit count (git rev-list --count HEAD) so builds order", describe)
		}
		if m[1] != "" {
			dirty = 1
		}
		return fmt.Sprintf("0.0.0-0.%d.%d", commits, dirty), nil
	}
	return "", fmt.Errorf("version %q: want a tag like v1.2.3 (git describe: v1.2.3, v1.2.3-4-gHASH, optional -dirty) or a bare commit hash", describe)
}
