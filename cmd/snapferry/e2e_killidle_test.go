package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// Kill-idle (docs/pid-registry.md) must stop only what belongs to the launching job's own
// registry, and there only idle leftovers and older user jobs that a new one replaces. These
// tests run real snapferry processes, as people and cron do.

// throttleEnv makes the test binary a pipe throttle (see throttleMain): it runs the command in
// its arguments and passes that command's stdout on slowly, so that a `serve` behind it feeds a
// client at a crawl and the client's job stays busy, making steady progress, for the whole test.
const throttleEnv = "SNAPFERRY_TEST_THROTTLE"

// throttleMain copies the child's stdout in 8 KiB steps 20 ms apart (at most ~400 KiB/s).
func throttleMain() int {
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.Stdin, c.Stderr = os.Stdin, os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "throttle:", err)
		return 2
	}
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "throttle:", err)
		return 2
	}
	buf := make([]byte, 8<<10)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			if _, werr := os.Stdout.Write(buf[:n]); werr != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			break
		}
	}
	if err := c.Wait(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 2
	}
	return 0
}

// runningJob is a snapferry process the test started and reaps.
type runningJob struct {
	cmd  *exec.Cmd
	out  *sshtest.Buffer
	done chan struct{}
}

func startSF(t *testing.T, env []string, args ...string) *runningJob {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	j := &runningJob{cmd: cmd, out: &sshtest.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = j.out, j.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(j.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-j.done
	})
	return j
}

func (j *runningJob) exited() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// registeredPID waits until the registry in home names a process matching want (a pid, or 0 for
// any) of type typ and returns its pid. It fails the test when job ends first or after 60s.
func registeredPID(t *testing.T, home string, want int, typ string, job *runningJob) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if pid := findEntry(home, want, typ); pid != 0 {
			return pid
		}
		if job != nil && job.exited() {
			t.Fatalf("%v ended before it registered in %s:\n%s", job.cmd.Args, home, job.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s process %d registered in %s within 60s", typ, want, home)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findEntry(home string, want int, typ string) int {
	f, err := os.Open(filepath.Join(home, "snapferry-pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 2 || fields[1] != typ {
			continue
		}
		pid, _ := strconv.Atoi(fields[0])
		if want == 0 || pid == want {
			return pid
		}
	}
	return 0
}

// alive reports whether pid runs (and is no zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func requireProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("/proc is required: %v", err)
		}
		t.Skip("no /proc")
	}
}

// TestKillIdleSpares20ParallelBackupsInOtherHomes: 20 user backups, each with its own --home
// and repository, started one after the other so that every launch's kill-idle sees all the
// earlier ones running. None belongs to another's registry, so none may be stopped.
func TestKillIdleSpares20ParallelBackupsInOtherHomes(t *testing.T) {
	requireProc(t)
	dir := t.TempDir()
	const n = 20
	var jobs []*runningJob
	for i := 0; i < n; i++ {
		home := filepath.Join(dir, fmt.Sprintf("home%d", i))
		repoDir := filepath.Join(dir, fmt.Sprintf("repo%d", i))
		img := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		sparseImage(t, img, 8<<20, 0, 1, 2)
		mustSF(t, home, 0, "init", repoDir)
		// --bwlimit keeps each backup running for minutes: it is busy when the later ones start.
		j := startSF(t, nil, "backup", img, "--to", repoDir, "--home", home, "--bwlimit", "16K")
		registeredPID(t, home, j.cmd.Process.Pid, "user", j)
		jobs = append(jobs, j)
	}
	// The last launch registered after its kill-idle finished: every verdict is in.
	var dead []string
	for i, j := range jobs {
		if j.exited() || !alive(j.cmd.Process.Pid) {
			dead = append(dead, fmt.Sprintf("backup %d (pid %d): %s", i, j.cmd.Process.Pid, j.out.String()))
		}
	}
	if len(dead) > 0 {
		t.Fatalf("%d of %d backups in other state folders were stopped:\n%s", len(dead), n, strings.Join(dead, "\n"))
	}
}

// wrapperScript writes an executable shell script that runs the snapferry binary with the given
// environment; through --remote-path it stands for the installed snapferry of the far side.
func wrapperScript(t *testing.T, path string, throttle bool, env ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("exec %q", binPath)
	if throttle {
		run = fmt.Sprintf("%s=1 exec %q %q", throttleEnv, self, binPath)
	}
	// The far side (sshd's session, the throttle, serve) outlives the test's clients: serve
	// rewrites its registry in the test's folder when its client's link drops, after the client
	// was killed. The test's folder may only be removed once they are gone, or its removal races
	// them ("directory not empty", seen once in a CI-like run). Every process the script starts
	// carries marker in its environment; the cleanup (which runs before the folder's) waits for
	// them.
	marker := "SNAPFERRY_TEST_WRAPPER=" + path
	t.Cleanup(func() {
		testkit.Eventually(t, 30*time.Second, "the far side started by "+path+" to end", func() bool {
			return processesWithEnv(marker) == 0
		})
	})
	script := "#!/bin/sh\nexport " + marker + "\n"
	for _, e := range env {
		script += "export " + e + "\n"
	}
	script += run + ` "$@"` + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// processesWithEnv counts the live processes (zombies aside) with entry in their environment.
func processesWithEnv(entry string) int {
	procs, _ := os.ReadDir("/proc")
	n := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, e := range strings.Split(string(b), "\x00") {
			if e == entry && alive(pid) {
				n++
				break
			}
		}
	}
	return n
}

// TestKillIdleSparesServeOfAnotherClient: a client backs up over ssh:// through a real sshd on
// 127.0.0.1; the `serve` on the far side runs with its own state folder. A user job with
// another --home on the same host must stop neither that serve nor the other client's job.
func TestKillIdleSparesServeOfAnotherClient(t *testing.T) {
	requireProc(t)
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	serveHome, homeA, homeB := filepath.Join(dir, "serve-home"), filepath.Join(dir, "a"), filepath.Join(dir, "b")
	repoA, repoB := filepath.Join(dir, "repoA"), filepath.Join(dir, "repoB")
	remote := wrapperScript(t, filepath.Join(dir, "remote-snapferry"), false, "SNAPFERRY_HOME="+serveHome)
	mustSF(t, homeA, 0, "init", repoA)
	mustSF(t, homeB, 0, "init", repoB)
	imgA, imgB := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	sparseImage(t, imgA, 8<<20, 0, 1, 2)
	sparseImage(t, imgB, 4<<20, 0)

	spec := s.Spec("ssh", repoA)
	client := startSF(t, nil, append([]string{"backup", imgA, "--to", spec, "--home", homeA, "--bwlimit", "16K"},
		s.Flags("--remote-path", remote)...)...)
	registeredPID(t, homeA, client.cmd.Process.Pid, "user", client)
	servePID := registeredPID(t, serveHome, 0, "remote", client)

	mustSF(t, homeB, 0, "backup", imgB, "--to", repoB)

	if !alive(servePID) {
		t.Fatalf("the serve (pid %d) of another client's ssh session was stopped", servePID)
	}
	if client.exited() {
		t.Fatalf("the other client's backup was stopped:\n%s", client.out.String())
	}
}

// TestKillIdleKeepsBusyRestoreAndCheckStopsIdleLeftover: in one state folder a restore and a
// `check --read-data` read from a (slowed) ssh:// store and make steady progress; another
// restore is stopped (SIGSTOP, as by Ctrl-Z) and makes none. A new user job there stops only
// the idle one.
func TestKillIdleKeepsBusyRestoreAndCheckStopsIdleLeftover(t *testing.T) {
	requireProc(t)
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	repoDir, repoB := filepath.Join(dir, "repo"), filepath.Join(dir, "repoB")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 32<<20, seq(0, 16)...)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", img, "--to", repoDir)
	mustSF(t, home, 0, "init", repoB)
	small := filepath.Join(dir, "small.img")
	sparseImage(t, small, 4<<20, 0)

	const idleAfter = "SNAPFERRY_IDLE_AFTER=4s"
	slow := wrapperScript(t, filepath.Join(dir, "slow-snapferry"), true, "SNAPFERRY_HOME="+filepath.Join(dir, "serve-home"))
	spec := s.Spec("ssh", repoDir)
	ssh := s.Flags("--remote-path", slow, "--home", home)

	busy := startSF(t, []string{idleAfter}, append([]string{"restore", "latest", "--from", spec, "--target", filepath.Join(dir, "out1")}, ssh...)...)
	registeredPID(t, home, busy.cmd.Process.Pid, "user", busy)
	check := startSF(t, []string{idleAfter}, append([]string{"check", "--read-data", "--repo", spec}, ssh...)...)
	idle := startSF(t, []string{idleAfter}, append([]string{"restore", "latest", "--from", spec, "--target", filepath.Join(dir, "out2")}, ssh...)...)
	registeredPID(t, home, idle.cmd.Process.Pid, "user", idle)
	if err := idle.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Idle means no progress for longer than SNAPFERRY_IDLE_AFTER: let that time pass.
	time.Sleep(6 * time.Second)
	// The idle restore was a user launch too: it must have kept the busy jobs (or they ended
	// early, if the slowed store were not slow enough).
	if busy.exited() || check.exited() {
		t.Fatalf("a restore or check making progress ended before the new job ran:\nrestore:\n%s\ncheck:\n%s\nlater restore:\n%s",
			busy.out.String(), check.out.String(), idle.out.String())
	}

	launch := exec.Command(binPath, "backup", small, "--to", repoB)
	launch.Env = append(os.Environ(), "SNAPFERRY_HOME="+home, idleAfter)
	r := runCollect(t, launch)
	if r.code != 0 {
		t.Fatalf("the new user job failed (exit %d):\n%s", r.code, r.stderr)
	}

	if busy.exited() {
		t.Errorf("a restore making progress was stopped:\n%s", busy.out.String())
	}
	if check.exited() {
		t.Errorf("a check --read-data making progress was stopped:\n%s", check.out.String())
	}
	select {
	case <-idle.done:
	case <-time.After(30 * time.Second):
		t.Errorf("the idle restore (pid %d) still runs; the new job said:\n%s", idle.cmd.Process.Pid, r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("stopped an earlier snapferry process %d", idle.cmd.Process.Pid)) {
		t.Errorf("the new job does not say it stopped the idle restore:\n%s", r.stderr)
	}
}
