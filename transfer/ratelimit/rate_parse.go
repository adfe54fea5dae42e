package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseRate turns a rate such as "10M", "500k", "1.5MiB/s", "2MB" or "65536" into bytes per
// second. "0" means no limit. See the package comment for the units.
func ParseRate(s string) (int64, error) {
	in := strings.TrimSpace(s)
	body := strings.TrimSuffix(strings.TrimSuffix(in, "/s"), "/S")
	end := 0
	for end < len(body) && (body[end] >= '0' && body[end] <= '9' || body[end] == '.') {
		end++
	}
	num, unit := body[:end], strings.TrimSpace(body[end:])
	v, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("rate %q: want bytes per second, a number with an optional unit like 500k, 10M or 1.5MiB/s", s)
	}
	mult, ok := unitMultiplier(unit)
	if !ok {
		return 0, fmt.Errorf("rate %q: unknown unit %q; use k, M, G, T (1024-based), KiB, MiB..., or kB, MB... (1000-based)", s, unit)
	}
	bytes := v * mult
	if bytes >= math.MaxInt64/2 {
		return 0, fmt.Errorf("rate %q: too large", s)
	}
	if bytes > 0 && bytes < 1 {
		return 0, fmt.Errorf("rate %q: below 1 byte per second; use 0 for no limit", s)
	}
	return int64(bytes), nil
}

// unitMultiplier maps a unit (case-insensitive prefix letter) to its factor.
func unitMultiplier(unit string) (float64, bool) {
	if unit == "" || strings.EqualFold(unit, "b") {
		return 1, true
	}
	pow := strings.IndexByte("kmgt", lower(unit[0])) + 1
	if pow == 0 {
		return 0, false
	}
	switch rest := unit[1:]; {
	case rest == "", strings.EqualFold(rest, "i"), strings.EqualFold(rest, "ib"):
		return math.Pow(1024, float64(pow)), true
	case rest == "B" || rest == "b":
		return math.Pow(1000, float64(pow)), true
	}
	return 0, false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
