package pidmgr

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHeartbeatRoundTrip(t *testing.T) {
	hb := Heartbeat{PID: 42, Token: "lx:77@8c1f", Command: "restore", KeepWhileBusy: true, Progress: 1 << 30,
		At: time.Date(2026, 12, 6, 22, 0, 1, 5, time.UTC)}
	b, err := encodeHeartbeat(hb)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "\n") != 1 || !strings.HasPrefix(string(b), `{"v":1,`) {
		t.Errorf("heartbeat file %q is not one JSON line with a version", b)
	}
	back, err := parseHeartbeat(b)
	if err != nil || !reflect.DeepEqual(back, hb) {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, hb)
	}
}

func TestParseHeartbeatRejects(t *testing.T) {
	for name, s := range map[string]string{
		"empty":         ``,
		"torn":          `{"v":1,"pid":4,"token":"lx:1","progress":0,"at":"2026-12-06T22:0`,
		"other version": `{"v":2,"pid":4,"token":"lx:1","progress":0,"at":"2026-12-06T22:00:00Z"}`,
		"no pid":        `{"v":1,"token":"lx:1","progress":0,"at":"2026-12-06T22:00:00Z"}`,
		"no token":      `{"v":1,"pid":4,"progress":0,"at":"2026-12-06T22:00:00Z"}`,
		"no time":       `{"v":1,"pid":4,"token":"lx:1","progress":0}`,
		"space token":   `{"v":1,"pid":4,"token":"lx 1","progress":0,"at":"2026-12-06T22:00:00Z"}`,
		"negative":      `{"v":1,"pid":4,"token":"lx:1","progress":-1,"at":"2026-12-06T22:00:00Z"}`,
		"unknown field": `{"v":1,"pid":4,"token":"lx:1","progress":0,"at":"2026-12-06T22:00:00Z","x":1}`,
		"two objects":   `{"v":1,"pid":4,"token":"lx:1","progress":0,"at":"2026-12-06T22:00:00Z"}{}`,
		"huge":          `{"v":1,"pid":4,"token":"lx:1","command":"` + strings.Repeat("a", 5000) + `","progress":0,"at":"2026-12-06T22:00:00Z"}`,
	} {
		if hb, err := parseHeartbeat([]byte(s)); err == nil {
			t.Errorf("%s: accepted %q as %+v", name, s, hb)
		}
	}
}

// Whatever parses encodes back to a heartbeat that parses to the same value.
func FuzzParseHeartbeat(f *testing.F) {
	f.Add([]byte(`{"v":1,"pid":4,"token":"lx:1@b","command":"check","keep_while_busy":true,"progress":9,"at":"2026-12-06T22:00:00Z"}` + "\n"))
	f.Add([]byte(`{"v":1,"pid":1,"token":"psc:00ff","progress":0,"at":"2026-12-06T22:00:00.123456789+01:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hb, err := parseHeartbeat(data)
		if err != nil {
			return
		}
		b, err := encodeHeartbeat(hb)
		if err != nil {
			t.Fatalf("parsed %q but cannot write it back: %v", data, err)
		}
		back, err := parseHeartbeat(b)
		if err != nil || !reflect.DeepEqual(back, hb) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", data, hb, b, back, err)
		}
	})
}

// Begin writes a heartbeat for this process; Cleanup removes heartbeats without an entry and
// Shutdown removes this process's own.
func TestHeartbeatFilesFollowTheRegistry(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	r := f.registry()
	ctx := context.Background()
	rep, err := r.Begin(ctx, BeginOptions{Type: TypeUser, JobID: "j1", Command: "prune", KeepWhileBusy: true})
	if err != nil {
		t.Fatal(err)
	}
	hb, ok := r.readBeat(rep.Entry.PID)
	if !ok || hb.Token != rep.Entry.Token || hb.Command != "prune" || !hb.KeepWhileBusy {
		t.Fatalf("heartbeat after Begin: %+v (found %v)", hb, ok)
	}
	if err := rep.Pulse.Beat(500); err != nil {
		t.Fatal(err)
	}
	if hb, _ := r.readBeat(rep.Entry.PID); hb.Progress != 500 || hb.At.Before(rep.Pulse.Last().At) {
		t.Errorf("heartbeat after Beat(500): %+v", hb)
	}
	if st, err := r.List(ctx); err != nil || len(st) != 1 || st[0].Heartbeat == nil || st[0].Heartbeat.Progress != 500 {
		t.Errorf("List: %+v, %v; want this process with its heartbeat", st, err)
	}
	stale := Heartbeat{PID: 999999, Token: "lx:1", At: time.Now()}
	if err := r.writeBeat(stale); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.beatPath(stale.PID)); !os.IsNotExist(err) {
		t.Errorf("heartbeat of a pid without an entry survives Cleanup: %v", err)
	}
	if _, ok := r.readBeat(rep.Entry.PID); !ok {
		t.Error("Cleanup removed the heartbeat of a live entry")
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.beatDir); !os.IsNotExist(err) {
		t.Errorf("heartbeat folder left after the last Shutdown: %v", err)
	}
}

// On Linux a start token names the boot: the same pid and start tick after a reboot is
// another process.
func TestLinuxTokenCarriesBootID(t *testing.T) {
	requireLinuxProc(t)
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		t.Skipf("no boot id: %v", err)
	}
	p, err := (gopsutilTable{}).Lookup(context.Background(), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := "@" + strings.TrimSpace(string(b)); !strings.HasPrefix(p.Token, "lx:") || !strings.HasSuffix(p.Token, want) {
		t.Errorf("token %q does not end with the boot id %q", p.Token, want)
	}
}
