package esxi

import (
	"reflect"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance"
)

func TestParseSnapshotGetReference(t *testing.T) {
	snaps, err := ParseSnapshotGet(sample(t, "snapshot.txt", "no snapshots", false))
	if err != nil || len(snaps) != 0 {
		t.Errorf("no snapshots: got %+v, %v", snaps, err)
	}
	snaps, err = ParseSnapshotGet(sample(t, "snapshot.txt", "a tree", false))
	if err != nil {
		t.Fatal(err)
	}
	want := []appliance.SnapshotInfo{
		{ID: "5", Name: "snap0", Description: "before upgrade", Created: time.Date(2017, 11, 29, 23, 59, 6, 0, time.UTC), State: "powered on"},
		{ID: "6", Name: "finish_install", Description: "clush configured\ntmp and all traces of mapr removed",
			Created: time.Date(2014, 8, 21, 22, 0, 23, 0, time.UTC), State: "powered off", Parent: "5", Level: 1},
	}
	if !reflect.DeepEqual(snaps, want) {
		t.Errorf("tree:\n got %+v\nwant %+v", snaps, want)
	}
	snaps, err = ParseSnapshotGet(sample(t, "snapshot.txt", "snapshot.remove ID SNAPID", false))
	if err != nil || len(snaps) != 1 || snaps[0].ID != "5" {
		t.Errorf("tree after remove: got %+v, %v", snaps, err)
	}
}

func TestParseSnapshotGetShapes(t *testing.T) {
	// Two roots' worth of siblings and a grandchild: Level/Index are what the old remove syntax takes.
	out := "Get Snapshot:\n|-ROOT\n--Snapshot Name        : a\n--Snapshot Id        : 1\n" +
		"--|-CHILD\n----Snapshot Name        : b\n----Snapshot Id        : 2\n" +
		"----|-CHILD\n------Snapshot Name        : c\n------Snapshot Id        : 3\n" +
		"------Snapshot Desciption  : \n" +
		"--|-CHILD\n----Snapshot Name        : d\n----Snapshot Id        : 4\n"
	snaps, err := ParseSnapshotGet(out)
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		id, parent   string
		level, index int
	}
	var got []shape
	for _, s := range snaps {
		got = append(got, shape{s.ID, s.Parent, s.Level, s.Index})
	}
	want := []shape{{"1", "", 0, 0}, {"2", "1", 1, 0}, {"3", "2", 2, 0}, {"4", "1", 1, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"",
		"Get Snapshot:\n--|-CHILD\n",
		"Get Snapshot:\n|-ROOT\n--Snapshot Name        : a\n",
		"Get Snapshot:\n|-ROOT\n--Snapshot Name        : a\n--Snapshot Id        : x\n",
		"Get Snapshot:\n|-ROOT\n--Snapshot Name        : a\n--Snapshot Id        : 1\n--Snapshot Created On  : 2017-11-29\n",
		"Get Snapshot:\nstray\n",
	} {
		if _, err := ParseSnapshotGet(bad); err == nil {
			t.Errorf("ParseSnapshotGet(%q): want an error", bad)
		}
	}
}

func TestSnapshotTimeRoundTrip(t *testing.T) {
	tm := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := FormatSnapshotTime(tm)
	if s != "1/2/2024 3:4:5" {
		t.Errorf("FormatSnapshotTime = %q", s)
	}
	back, err := ParseSnapshotTime(s)
	if err != nil || !back.Equal(tm) {
		t.Errorf("ParseSnapshotTime(%q) = %v, %v", s, back, err)
	}
}

func TestRemoveSyntax(t *testing.T) {
	snap := appliance.SnapshotInfo{ID: "9", Level: 1, Index: 2}
	newUsage := "Usage: snapshot.remove vmid snapshotId [removeChildren]\n\nRemove a snapshot associated with a virtual machine.\n"
	oldUsage := "Usage: snapshot.remove vmid [removeChildren] [snapshotLevel] [snapshotIndex]\n"
	if s, err := ParseRemoveUsage(newUsage); err != nil || s != RemoveByID {
		t.Errorf("new usage: %v, %v", s, err)
	}
	if s, err := ParseRemoveUsage(oldUsage); err != nil || s != RemoveByLevel {
		t.Errorf("old usage: %v, %v", s, err)
	}
	if _, err := ParseRemoveUsage("nothing useful"); err == nil {
		t.Error("unknown usage: want an error")
	}
	if got := RemoveArgs(RemoveByID, "12", snap); !reflect.DeepEqual(got, []string{"vmsvc/snapshot.remove", "12", "9", "0"}) {
		t.Errorf("RemoveArgs new = %q", got)
	}
	if got := RemoveArgs(RemoveByLevel, "12", snap); !reflect.DeepEqual(got, []string{"vmsvc/snapshot.remove", "12", "0", "1", "2"}) {
		t.Errorf("RemoveArgs old = %q", got)
	}
}

func FuzzParseSnapshotGet(f *testing.F) {
	addSeeds(f, false, "snapshot.txt")
	f.Fuzz(func(t *testing.T, out string) {
		snaps, err := ParseSnapshotGet(out)
		if err != nil {
			return
		}
		ids := map[string]bool{}
		for _, s := range snaps {
			if s.ID == "" || s.Name == "" || (s.Level == 0) != (s.Parent == "") || (s.Parent != "" && !ids[s.Parent]) {
				t.Fatalf("inconsistent snapshot %+v from %q", s, out)
			}
			ids[s.ID] = true
		}
	})
}
