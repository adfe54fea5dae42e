package pidmgr

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

// testdata/ps-c.txt is the ESXi reference sample (../shared/esxi-reference/ps.txt without its
// comment lines), kept byte for byte.
func TestParsePSCReference(t *testing.T) {
	f, err := os.Open("testdata/ps-c.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps, err := ParsePSC(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pid           int
		name, cmdline string
		argv0         string
	}{
		{2099251, "sshd", "sshd: root@pts/0", "sshd:"},
		{3360393, "busybox", "ash ./ghettoVCB.sh -f list -d debug", "ash"},
		{3360796, "vmkfstools", "/sbin/vmkfstools -i /vmfs/volumes/datastore1/web01/web01.vmdk -a lsilogic -d thin /vmfs/volumes/backup/web01/web01.vmdk", "/sbin/vmkfstools"},
	}
	if len(ps) != len(want) {
		t.Fatalf("parsed %d processes, want %d: %+v", len(ps), len(want), ps)
	}
	for i, w := range want {
		p := ps[i]
		if p.PID != w.pid || p.Name != w.name || p.Cmdline != w.cmdline || p.Argv[0] != w.argv0 || p.PPID != 0 || p.Exe != "" {
			t.Errorf("process %d: %+v, want pid %d name %q cmdline %q", i, p, w.pid, w.name, w.cmdline)
		}
		if !strings.HasPrefix(p.Token, "psc:") || p.Token != pscToken(w.name, w.cmdline) {
			t.Errorf("process %d: token %q", i, p.Token)
		}
	}
}

const pscHeader = "WID      CID      WorldName                                     CommandLine\n"

func TestParsePSCCases(t *testing.T) {
	row := func(wid, cid, name, cmd string) string {
		return padRight(wid, 9) + padRight(cid, 9) + padRight(name, 46) + cmd + "\n"
	}
	type proc struct {
		pid     int
		name    string
		cmdline string
	}
	for _, tc := range []struct {
		name string
		in   string
		want []proc
	}{
		{"name with spaces stays whole", pscHeader + row("100", "100", "vmx-vcpu-0:web 01", "/bin/vmx -s x"),
			[]proc{{100, "vmx-vcpu-0:web 01", "/bin/vmx -s x"}}},
		{"name longer than its column", pscHeader + "200      200      " + strings.Repeat("n", 50) + " /bin/tool -x\n",
			[]proc{{200, strings.Repeat("n", 50), "/bin/tool -x"}}},
		{"world without command line", pscHeader + "1        0        idle1\n",
			[]proc{{1, "idle1", ""}}},
		{"threads fold into their cartel", pscHeader + row("301", "300", "snapferry-worker", "snapferry backup") + row("300", "300", "snapferry", "snapferry backup") + row("302", "300", "snapferry-io", "snapferry backup"),
			[]proc{{300, "snapferry", "snapferry backup"}}},
		{"cartel seen only through a thread", pscHeader + row("402", "400", "w2", "x") + row("401", "400", "w1", "x"),
			[]proc{{400, "w1", "x"}}},
		{"CRLF and blank lines", strings.ReplaceAll(pscHeader+"\n"+row("7", "7", "sh", "sh -c true"), "\n", "\r\n"),
			[]proc{{7, "sh", "sh -c true"}}},
		{"header only", pscHeader, nil},
		{"newline in an argument continues the command line",
			pscHeader + row("500", "500", "bash", "bash -c LARGE_TEXT='#!/bin/bash") + "  echo 1 2 'x\n\n" + row("501", "501", "sleep", "sleep 9"),
			[]proc{{500, "bash", "bash -c LARGE_TEXT='#!/bin/bash\n  echo 1 2 'x"}, {501, "sleep", "sleep 9"}}},
		{"huge command line kept in part", pscHeader + row("600", "600", "sh", "sh -c "+strings.Repeat("y", 2<<20)) + row("601", "601", "sleep", "sleep 9"),
			[]proc{{600, "sh", ("sh -c " + strings.Repeat("y", 2<<20))[:maxPSCLine-len(row("600", "600", "sh", ""))+1]}, {601, "sleep", "sleep 9"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParsePSC(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []proc
			for _, p := range ps {
				got = append(got, proc{p.PID, p.Name, p.Cmdline})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParsePSCErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"procps output":      {"  PID TTY          TIME CMD\n    1 ?        00:00:01 init\n", "is this ESXi's `ps -c`"},
		"empty":              {"", "no header line"},
		"bad WID":            {pscHeader + "abc      1        x     y\n", `WID "abc" is not a number`},
		"bad CID":            {pscHeader + "1        -2       x     y\n", `CID "-2" is not a number`},
		"no world name":      {pscHeader + "1        1\n", "no WorldName"},
		"first row no world": {pscHeader + "echo hi\n1        1        sh     sh\n", `line 2 "echo hi": WID "echo" is not a number`},
	} {
		_, err := ParsePSC(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func FuzzParsePSC(f *testing.F) {
	ref, err := os.ReadFile("testdata/ps-c.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(ref))
	f.Add(pscHeader + "1        0        idle1\n")
	f.Add(pscHeader + "301      300      snapferry-worker          snapferry backup\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := ParsePSC(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, p := range ps {
			if p.PID < 0 || seen[p.PID] || p.Name == "" || p.PPID != 0 || !strings.HasPrefix(p.Token, "psc:") {
				t.Fatalf("bad process %+v from %q", p, in)
			}
			if strings.Contains(p.Name, "\n") || strings.HasSuffix(p.Cmdline, "\n") {
				t.Fatalf("newline inside a name or ending a command line: %+v", p)
			}
			seen[p.PID] = true
		}
	})
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}

// The ps -c table against real processes: a shim prints this host's processes in ESXi's layout
// (procps cannot), so Lookup and Alive run end to end through exec and the parser.
func TestPSTableWithRealProcesses(t *testing.T) {
	testkit.RequireTool(t, "ps")
	shim := filepath.Join(t.TempDir(), "ps-esxi")
	script := "#!/bin/sh\n" +
		"printf 'WID      CID      WorldName                                     CommandLine\\n'\n" +
		"ps -eo pid=,comm=,args= | awk '{ pid=$1; comm=$2; $1=\"\"; $2=\"\"; sub(/^ +/, \"\"); printf \"%-8s %-8s %-45s %s\\n\", pid, pid, comm, $0 }'\n"
	if err := os.WriteFile(shim, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	tab := &PSTable{Command: []string{shim}}
	ctx := context.Background()
	var p Process
	var err error
	for i := 0; i < 100; i++ { // until the child has exec'd sleep
		if p, err = tab.Lookup(ctx, sleeper.Process.Pid); err == nil && p.Name == "sleep" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || p.Name != "sleep" || p.Cmdline != "sleep 300" {
		t.Fatalf("lookup of sleep %d: %+v, %v", sleeper.Process.Pid, p, err)
	}
	if alive, err := tab.Alive(ctx, p.PID, p.Token); err != nil || !alive {
		t.Fatalf("alive before kill: %v, %v", alive, err)
	}
	if alive, _ := tab.Alive(ctx, p.PID, "psc:0000000000000000"); alive {
		t.Errorf("alive with a wrong token")
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	if alive, err := tab.Alive(ctx, p.PID, p.Token); err != nil || alive {
		t.Errorf("alive after kill: %v, %v", alive, err)
	}
	if _, err := (&PSTable{Command: []string{filepath.Join(t.TempDir(), "missing-ps")}}).Processes(ctx); err == nil || !strings.Contains(err.Error(), "missing-ps") {
		t.Errorf("missing ps: %v", err)
	}
}

// Lookup accepts a world id as well as a cartel id (whichever getpid() yields on ESXi) and
// answers with the cartel; an id in neither column is ErrNoProcess.
func TestPSTableLookupByWorldID(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ps-c.out")
	text := pscHeader +
		"300      300      snapferry                                     /vmfs/volumes/ds1/snapferry/snapferry backup --vm=all\n" +
		"301      300      snapferry-io                                  /vmfs/volumes/ds1/snapferry/snapferry backup --vm=all\n" +
		"2099251  2099251  sshd                                          sshd: root@pts/0\n"
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tab := &PSTable{Command: []string{"cat", out}}
	ctx := context.Background()
	for _, id := range []int{300, 301} {
		p, err := tab.Lookup(ctx, id)
		if err != nil || p.PID != 300 || p.Name != "snapferry" || p.StartOrder != 300 {
			t.Errorf("lookup %d: %+v, %v; want cartel 300", id, p, err)
		}
	}
	if _, err := tab.Lookup(ctx, 302); err != ErrNoProcess {
		t.Errorf("lookup of an unknown id: %v", err)
	}
}

// A ps that is not ESXi's (Linux busybox here) is refused with an error that says so, instead of
// being half understood.
func TestPSTableRefusesOtherPS(t *testing.T) {
	bb := testkit.RequireTool(t, "busybox")
	ctx := context.Background()
	for _, cmd := range [][]string{{bb, "ps"}, {bb, "ps", "-c"}} {
		_, err := (&PSTable{Command: cmd}).Processes(ctx)
		if err == nil || !strings.Contains(err.Error(), strings.Join(cmd, " ")) {
			t.Errorf("%q: error %v, want one naming the command", cmd, err)
		}
	}
	_, err := (&PSTable{Command: []string{bb, "ps"}}).Processes(ctx)
	if err == nil || !strings.Contains(err.Error(), "is this ESXi's `ps -c`") {
		t.Errorf("busybox ps: %v", err)
	}
}
