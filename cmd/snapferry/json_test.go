package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
)

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkDialect fails when a JSON document uses a key that is not snake_case or a null value:
// docs/json.md promises snake_case keys, [] for empty lists and absent fields for missing ones.
func checkDialect(t *testing.T, cmd string, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Errorf("%s --json: null at %s", cmd, path)
	case map[string]any:
		for k, e := range x {
			if !snakeKey.MatchString(k) {
				t.Errorf("%s --json: key %q at %s is not snake_case", cmd, k, path)
			}
			checkDialect(t, cmd, e, path+"."+k)
		}
	case []any:
		for _, e := range x {
			checkDialect(t, cmd, e, path+"[]")
		}
	}
}

// jsonDoc decodes a command's stdout: one document, or (lines=true) one document per line.
func jsonDoc(t *testing.T, cmd string, out string, lines bool) []any {
	t.Helper()
	var docs []any
	if lines {
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("%s --json: line %q: %v", cmd, sc.Text(), err)
			}
			docs = append(docs, v)
		}
		return docs
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s --json: %v\n%s", cmd, err, out)
	}
	if dec.More() {
		t.Fatalf("%s --json printed more than one document:\n%s", cmd, out)
	}
	return []any{v}
}

// TestJSONDialect runs every command that has a --json form in a sandbox (a temp repository, a
// simulated ESXi host, a private state folder) and checks the one dialect of docs/json.md.
func TestJSONDialect(t *testing.T) {
	_, env, _ := simHost(t, sim.VMSpec{Name: "web 1", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: 8 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 7}}}}})
	dir := t.TempDir()
	home, repoDir, src := filepath.Join(dir, "state"), filepath.Join(dir, "repo"), filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "f"), []byte("hello"), 0o644)
	vt := filepath.Join(dir, "tape1")
	cmds := []struct {
		args  []string
		lines bool
	}{
		{[]string{"init", repoDir}, false},
		{[]string{"backup", src, "--to=" + repoDir}, false},
		{[]string{"backup", "--vm=web 1", "--to=" + repoDir}, false},
		{[]string{"snapshots", "--repo=" + repoDir}, false},
		{[]string{"ls", "latest", "--repo=" + repoDir, "--source=" + src}, false},
		{[]string{"check", "--repo=" + repoDir}, false},
		{[]string{"forget", "--repo=" + repoDir, "--keep-last=1", "--dry-run"}, false},
		{[]string{"prune", "--repo=" + repoDir, "--dry-run"}, false},
		{[]string{"unlock", "--repo=" + repoDir}, false},
		{[]string{"rebuild-index", "--repo=" + repoDir}, false},
		{[]string{"restore", "latest", "--from=" + repoDir, "--source=" + src, "--target=" + filepath.Join(dir, "restored")}, false},
		{[]string{"vms"}, false},
		{[]string{"jobs"}, false},
		{[]string{"jobs", "--summary"}, false},
		{[]string{"pid", "list"}, false},
		{[]string{"pid", "cleanup"}, false},
		{[]string{"cron", "add", "n", "@daily", "--", "check", "--repo=" + repoDir}, false},
		{[]string{"cron", "list"}, false},
		{[]string{"cron", "due", "--at=2030-01-01T00:00:00Z", "--until=2030-01-03T00:00:00Z"}, false},
		{[]string{"cron", "run", "n"}, false},
		{[]string{"cron", "install", "--crontab=" + filepath.Join(dir, "crontab")}, false},
		{[]string{"cron", "suspend"}, false},
		{[]string{"cron", "resume"}, false},
		{[]string{"cron", "remove", "n"}, false},
		{[]string{"tape", "label", vt, "--capacity=64M"}, false},
		{[]string{"tape", "list"}, false},
		{[]string{"tape", "list", "--volumes"}, false},
		{[]string{"version"}, false},
	}
	for _, c := range cmds {
		name := strings.Join(c.args[:min(2, len(c.args))], " ")
		r := sfEnv(t, home, append(env, "SNAPFERRY_TAPE="), 0, append([]string{"--json"}, c.args...)...)
		for _, d := range jsonDoc(t, name, r.stdout, c.lines) {
			checkDialect(t, name, d, "$")
		}
	}
	// status exits 1 on a host that needs a human; its JSON follows the same dialect.
	r := sf(t, home, "status", "--json")
	for _, d := range jsonDoc(t, "status", r.stdout, false) {
		checkDialect(t, "status", d, "$")
	}
}
