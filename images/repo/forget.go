package repo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Policy says which snapshots to keep. Every rule keeps the newest snapshot of each of its last N
// periods; a snapshot kept by any rule stays. Policies apply per group of snapshots with the same
// host and source, so a busy VM cannot push out another's history.
type Policy struct {
	Last    int
	Hourly  int
	Daily   int
	Weekly  int
	Monthly int
	Yearly  int
	// Within keeps everything newer than this, measured from the clock.
	Within time.Duration
	// Tags keeps every snapshot that has one of these tags.
	Tags []string
	// Location is the time zone periods are counted in (default: UTC, like the host clock on ESXi).
	Location *time.Location
}

// Empty reports a policy that would keep nothing; Forget refuses it.
func (p Policy) Empty() bool {
	return p.Last <= 0 && p.Hourly <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 &&
		p.Yearly <= 0 && p.Within <= 0 && len(p.Tags) == 0
}

// ForgetDecision is the verdict on one snapshot, with the rules that kept it.
type ForgetDecision struct {
	SnapshotInfo
	Keep    bool     `json:"keep"`
	Reasons []string `json:"reasons"`
}

// ForgetGroup is one host+source group, newest snapshot first.
type ForgetGroup struct {
	Host      string           `json:"host"`
	Source    string           `json:"source"`
	Decisions []ForgetDecision `json:"decisions"`
}

type bucketRule struct {
	name  string
	count int
	key   func(time.Time) string
}

// ApplyPolicy decides, without touching the repository, which snapshots to keep at time now.
func ApplyPolicy(snaps []SnapshotInfo, p Policy, now time.Time) []ForgetGroup {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	type groupKey struct{ host, source string }
	groups := map[groupKey][]SnapshotInfo{}
	var order []groupKey
	for _, s := range snaps {
		k := groupKey{s.Snapshot.Host, s.Snapshot.Source}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	slices.SortFunc(order, func(a, b groupKey) int {
		if a.host != b.host {
			return cmp.Compare(a.host, b.host)
		}
		return cmp.Compare(a.source, b.source)
	})
	var out []ForgetGroup
	for _, k := range order {
		list := slices.Clone(groups[k])
		sortSnapshots(list)
		slices.Reverse(list) // newest first
		rules := []*bucketRule{
			{"last", p.Last, nil},
			{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02 15") }},
			{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
			{"weekly", p.Weekly, func(t time.Time) string {
				y, w := t.ISOWeek()
				return strconv.Itoa(y) + "-W" + strconv.Itoa(w)
			}},
			{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
			{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
		}
		last := make([]string, len(rules))
		g := ForgetGroup{Host: k.host, Source: k.source}
		for i, s := range list {
			d := ForgetDecision{SnapshotInfo: s}
			t := s.Snapshot.Time.In(loc)
			for ri, rule := range rules {
				if rule.count <= 0 {
					continue
				}
				key := strconv.Itoa(i)
				if rule.key != nil {
					key = rule.key(t)
				}
				if key != last[ri] {
					last[ri] = key
					rule.count--
					d.Reasons = append(d.Reasons, rule.name)
				}
			}
			if p.Within > 0 && now.Sub(s.Snapshot.Time) <= p.Within {
				d.Reasons = append(d.Reasons, "within "+p.Within.String())
			}
			for _, tag := range p.Tags {
				if slices.Contains(s.Snapshot.Tags, tag) {
					d.Reasons = append(d.Reasons, "tag "+tag)
				}
			}
			d.Keep = len(d.Reasons) > 0
			g.Decisions = append(g.Decisions, d)
		}
		out = append(out, g)
	}
	return out
}

// Forget applies p to the snapshots matching f and, unless dryRun, removes the ones not kept
// (their data stays until Prune). It holds a shared lock: backups may run meanwhile.
func (r *Repository) Forget(ctx context.Context, p Policy, f SnapshotFilter, dryRun bool) ([]ForgetGroup, error) {
	if p.Empty() {
		return nil, fmt.Errorf("forget: no keep rule given; refusing to remove every snapshot (use --keep-last=N or similar)")
	}
	lk, err := r.Lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	defer lk.Unlock(context.WithoutCancel(ctx))
	snaps, err := r.ListSnapshots(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	groups := ApplyPolicy(snaps, p, r.opts.Clock.Now())
	if dryRun {
		return groups, nil
	}
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.Keep {
				continue
			}
			if err := r.RemoveSnapshot(ctx, d.ID); err != nil {
				return groups, fmt.Errorf("forget: %w", err)
			}
		}
	}
	return groups, nil
}
