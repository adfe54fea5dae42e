package cronrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/appliance/notify/smtptest"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/crontest"
	"github.com/snapferry/snapferry/cron/testkit"
)

// fakeSnapferry writes a stand-in for the snapferry binary (the CLI is built elsewhere): a
// script that keeps the binary's contract for `cron run` — it counts its runs, exits with the
// status given for that run (the last one repeats), and on the run named by reportOn copies a
// prepared report to $SNAPFERRY_REPORT_FILE.
func fakeSnapferry(t *testing.T, codes []int, reportOn int, rep *notify.Report) (bin, counter string) {
	t.Helper()
	dir := t.TempDir()
	counter = filepath.Join(dir, "runs")
	reportSrc := filepath.Join(dir, "report.json")
	if rep != nil {
		if err := notify.WriteReportFile(reportSrc, *rep); err != nil {
			t.Fatal(err)
		}
	}
	var cases strings.Builder
	for i, c := range codes {
		pat := fmt.Sprint(i + 1)
		if i == len(codes)-1 {
			pat = "*"
		}
		fmt.Fprintf(&cases, "  %s) code=%d ;;\n", pat, c)
	}
	script := fmt.Sprintf(`#!/bin/sh
n=$(( $(cat '%[1]s' 2>/dev/null || echo 0) + 1 ))
echo $n > '%[1]s'
echo "snapferry $* (run $n, job $SNAPFERRY_CRON_JOB attempt $SNAPFERRY_ATTEMPT)"
case $n in
%[2]s esac
if [ "$n" = %[3]d ] && [ -n "$SNAPFERRY_REPORT_FILE" ]; then cp '%[4]s' "$SNAPFERRY_REPORT_FILE"; fi
[ $code = 0 ] || echo "error: simulated failure $code" >&2
exit $code
`, counter, cases.String(), reportOn, reportSrc)
	bin = filepath.Join(dir, "snapferry")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, counter
}

func runs(t *testing.T, counter string) string {
	b, _ := os.ReadFile(counter)
	return strings.TrimSpace(string(b))
}

func childReport() *notify.Report {
	start := time.Date(2026, 11, 22, 2, 15, 0, 0, time.UTC)
	return &notify.Report{
		JobID: "20261122-021500-aa01", Start: start, End: start.Add(10 * time.Minute), Result: notify.Partial,
		Rows: []notify.VMRow{
			{Name: "web01", Mode: "hot", Size: 8 << 30, Changed: 100 << 20, Stored: 40 << 20, Duration: time.Minute, Result: notify.Success},
			{Name: "db01", Mode: "hot", Size: 20 << 30, Duration: 5 * time.Second, Result: notify.Failure, Error: "VM is locked"},
		},
	}
}

// hookRecorder returns --on-event values that append "EVENT attempt=N result=R" to a file.
func hookRecorder(t *testing.T) (hooks []string, file string) {
	file = filepath.Join(t.TempDir(), "events")
	return []string{"job.start,job.retry,job.success,job.partial,job.failure:echo \"$SNAPFERRY_EVENT attempt=$SNAPFERRY_ATTEMPT result=$SNAPFERRY_RESULT job=$SNAPFERRY_JOB_NAME\" >> '" + file + "'"}, file
}

func TestRunRetriesThenMailsChildReport(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t, smtptest.Options{})
	store := cron.NewStore(t.TempDir())
	hooks, events := hookRecorder(t)
	job := cron.Job{Name: "nightly", Schedule: "0 2 * * *", Args: []string{"backup", "--vm=all", "--to=/r"},
		Retry: cron.Retry{Retries: 2, Delay: cron.Duration(5 * time.Minute), Window: cron.Duration(12 * time.Hour)},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr, TLS: "none", On: "failure"},
		Hooks: hooks}
	if err := store.Add(ctx, job, false); err != nil {
		t.Fatal(err)
	}
	// Run 1 fails (store unreachable), run 2 ends partial with a report, run 3 succeeds.
	bin, counter := fakeSnapferry(t, []int{1, 3, 0}, 2, childReport())
	clock := crontest.NewFakeClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
	var attempts []int
	res, err := Run(ctx, Options{Store: store, Name: "nightly", Binary: bin, Clock: clock, Host: "esx01",
		OnAttempt: func(a cron.Attempt) { attempts = append(attempts, a.Number) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err() != nil || fmt.Sprint(attempts) != "[1 2 3]" || runs(t, counter) != "3" || len(res.Warnings) != 0 {
		t.Fatalf("err %v attempts %v runs %s warnings %v", res.Err(), attempts, runs(t, counter), res.Warnings)
	}
	if fmt.Sprint(clock.Sleeps()) != "[5m0s 5m0s]" {
		t.Fatalf("sleeps %v", clock.Sleeps())
	}
	// The last attempt succeeded without a report: a success, so --mail-on=failure sends none.
	if res.Report.Result != notify.Success || res.MailSent || len(srv.Messages(t)) != 0 {
		t.Fatalf("report %+v mailed %v", res.Report, res.MailSent)
	}
	ev, _ := os.ReadFile(events)
	want := "job.start attempt=1 result= job=nightly\n" +
		"job.retry attempt=1 result=failure job=nightly\n" +
		"job.retry attempt=2 result=failure job=nightly\n" +
		"job.success attempt=3 result=success job=nightly\n"
	if string(ev) != want {
		t.Fatalf("events:\n%s\nwant:\n%s", ev, want)
	}
	log, _ := os.ReadFile(res.LogPath)
	for _, line := range []string{
		`cron run nightly: start: snapferry ["backup" "--vm=all" "--to=/r"]`,
		"snapferry backup --vm=all --to=/r (run 1, job nightly attempt 1)\nerror: simulated failure 1\n",
		"snapferry backup --vm=all --to=/r (run 3, job nightly attempt 3)\n",
		"attempt 1: snapferry backup --vm=all --to=/r exited with status 1 (failed); retry at 2026-11-22T02:05:00Z",
		"attempt 2: snapferry backup --vm=all --to=/r exited with status 3 (partial); retry at",
		"attempt 3: success", "cron run nightly: success after 3 attempt(s)",
	} {
		if !strings.Contains(string(log), line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
}

func TestRunPartialReportIsMailed(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t, smtptest.Options{})
	store := cron.NewStore(t.TempDir())
	job := cron.Job{Name: "nightly", Schedule: "0 2 * * *", Args: []string{"backup", "--vm=all"},
		Retry: cron.Retry{Retries: 1, Delay: cron.Duration(time.Minute)},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr, TLS: "none"}}
	store.Add(ctx, job, false)
	bin, _ := fakeSnapferry(t, []int{1, 3}, 2, childReport())
	res, err := Run(ctx, Options{Store: store, Name: "nightly", Binary: bin, Clock: crontest.NewFakeClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)), Host: "esx01"})
	if err != nil || res.Err() == nil || res.Report.Result != notify.Partial || !res.MailSent {
		t.Fatalf("err %v run err %v result %s mailed %v warnings %v", err, res.Err(), res.Report.Result, res.MailSent, res.Warnings)
	}
	msgs := srv.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	hdr, parts := smtptest.Parts(t, msgs[0].Raw)
	if s := hdr.Header.Get("Subject"); s != "[snapferry] PARTIAL: nightly on esx01 (1 of 2 VMs ok)" {
		t.Errorf("subject %q", s)
	}
	for _, want := range []string{"Attempt:   2", "Job id:    20261122-021500-aa01", "db01   hot   20.0 GiB  0 B", "failure: VM is locked"} {
		if !strings.Contains(parts["text/plain"], want) {
			t.Errorf("plain part lacks %q:\n%s", want, parts["text/plain"])
		}
	}
	if !strings.Contains(parts["text/html"], "<td>db01</td>") {
		t.Errorf("HTML part lacks the VM row:\n%s", parts["text/html"])
	}
}

func TestRunPermanentFailureNotRetried(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t, smtptest.Options{})
	store := cron.NewStore(t.TempDir())
	hooks, events := hookRecorder(t)
	job := cron.Job{Name: "pw", Schedule: "@daily", Args: []string{"backup", "--to=/r"},
		Retry: cron.Retry{Retries: 5, Delay: cron.Duration(time.Minute)},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr, TLS: "none", On: "failure"},
		Hooks: hooks}
	store.Add(ctx, job, false)
	bin, counter := fakeSnapferry(t, []int{12}, 0, nil)
	clock := crontest.NewFakeClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	res, err := Run(ctx, Options{Store: store, Name: "pw", Binary: bin, Clock: clock})
	if err != nil || !cron.IsPermanent(res.Err()) || runs(t, counter) != "1" || len(clock.Sleeps()) != 0 {
		t.Fatalf("err %v run err %v runs %s sleeps %v", err, res.Err(), runs(t, counter), clock.Sleeps())
	}
	ev, _ := os.ReadFile(events)
	if string(ev) != "job.start attempt=1 result= job=pw\njob.failure attempt=1 result=failure job=pw\n" {
		t.Fatalf("events %q", ev)
	}
	msgs := srv.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	_, parts := smtptest.Parts(t, msgs[0].Raw)
	if !strings.Contains(parts["text/plain"], "exited with status 12 (wrong password or key)") {
		t.Fatalf("mail lacks the error:\n%s", parts["text/plain"])
	}
}

func TestRunSuspendedSkips(t *testing.T) {
	ctx := context.Background()
	store := cron.NewStore(t.TempDir())
	store.Add(ctx, cron.Job{Name: "n", Schedule: "@daily", Args: []string{"check"}}, false)
	store.SetSuspended(ctx, true)
	bin, counter := fakeSnapferry(t, []int{0}, 0, nil)
	res, err := Run(ctx, Options{Store: store, Name: "n", Binary: bin})
	if err != nil || !res.Skipped || runs(t, counter) != "" {
		t.Fatalf("err %v skipped %v runs %q", err, res.Skipped, runs(t, counter))
	}
	log, _ := os.ReadFile(res.LogPath)
	if !strings.Contains(string(log), "skipped, scheduling is suspended") {
		t.Fatalf("log %q", log)
	}
	// A run still going (here: a real process holding the job's run lock) makes the next skip.
	store.SetSuspended(ctx, false)
	lockPath := filepath.Join(filepath.Dir(res.LogPath), "n.run.lock")
	testkit.RequireTool(t, "flock")
	// -o: the lock stays with flock itself, not with the sleep it starts.
	holder := exec.Command("flock", "-o", lockPath, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	// Wait until the holder really has the lock (our own try fails).
	testkit.Eventually(t, 5*time.Second, "flock(1) to take the lock", func() bool {
		probe := flock.New(lockPath)
		ok, err := probe.TryLock()
		probe.Unlock()
		return err == nil && !ok
	})
	res, err = Run(ctx, Options{Store: store, Name: "n", Binary: bin})
	if err != nil || !res.Skipped || !strings.Contains(res.SkipReason, "still going") || runs(t, counter) != "" {
		t.Fatalf("overlapping run: err %v skipped %v (%s) runs %q", err, res.Skipped, res.SkipReason, runs(t, counter))
	}
	holder.Process.Kill()
	holder.Wait()
	// flock(1) forked its command before it was killed; wait until the lock is really free.
	testkit.Eventually(t, 10*time.Second, "the run lock to be released", func() bool {
		probe := flock.New(lockPath)
		ok, err := probe.TryLock()
		probe.Unlock()
		return err == nil && ok
	})
	if res, err = Run(ctx, Options{Store: store, Name: "n", Binary: bin}); err != nil || res.Skipped || runs(t, counter) != "1" {
		t.Fatalf("after the holder ended: err %v skipped %v (%s) runs %q", err, res.Skipped, res.SkipReason, runs(t, counter))
	}
	if _, err := Run(ctx, Options{Store: store, Name: "missing", Binary: bin}); err == nil {
		t.Fatal("unknown job must fail")
	}
}

// A failing hook, a hanging hook and an unusable mail setting leave a successful job successful.
func TestRunBrokenHooksAndMailDoNotFailTheJob(t *testing.T) {
	ctx := context.Background()
	store := cron.NewStore(t.TempDir())
	job := cron.Job{Name: "n", Schedule: "@daily", Args: []string{"check"},
		Hooks: []string{"job.start:sleep 300", "job.success:echo hook failing; exit 9"},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "a@example.com", Server: "127.0.0.1:1", TLS: "none"}}
	store.Add(ctx, job, false)
	bin, _ := fakeSnapferry(t, []int{0}, 0, nil)
	start := time.Now()
	res, err := Run(ctx, Options{Store: store, Name: "n", Binary: bin, HookTimeout: 300 * time.Millisecond, MailTimeout: 2 * time.Second})
	if err != nil || res.Err() != nil || res.Report.Result != notify.Success {
		t.Fatalf("err %v run err %v result %s", err, res.Err(), res.Report.Result)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("hooks held the job for %s", time.Since(start))
	}
	var got []string
	for _, w := range res.Warnings {
		got = append(got, w.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"killed after 300ms timeout", "exit status 9", "connect"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	log, _ := os.ReadFile(res.LogPath)
	if !strings.Contains(string(log), "hook failing") || !strings.Contains(string(log), "cron run n: success") {
		t.Fatalf("log:\n%s", log)
	}
}

// An interrupted run (SIGTERM cancels the context) still fires its end hook and mails.
func TestRunInterruptedStillReports(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	store := cron.NewStore(t.TempDir())
	hooks, events := hookRecorder(t)
	job := cron.Job{Name: "n", Schedule: "@daily", Args: []string{"backup"},
		Retry: cron.Retry{Retries: 3, Delay: cron.Duration(time.Minute)},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "a@example.com", Server: srv.Addr, TLS: "none"},
		Hooks: hooks}
	store.Add(context.Background(), job, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	res, err := Run(ctx, Options{Store: store, Name: "n", Clock: crontest.NewFakeClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)),
		Exec: func(ctx context.Context, args, env []string, out io.Writer) error {
			calls++
			cancel() // the signal arrives during the attempt
			return fmt.Errorf("backup interrupted: %w", ctx.Err())
		}})
	if err != nil || res.Err() == nil || calls != 1 || res.Report.Result != notify.Failure || !res.MailSent {
		t.Fatalf("err %v run err %v calls %d result %s mailed %v warnings %v", err, res.Err(), calls, res.Report.Result, res.MailSent, res.Warnings)
	}
	ev, _ := os.ReadFile(events)
	if !strings.HasSuffix(string(ev), "job.failure attempt=1 result=failure job=n\n") {
		t.Fatalf("events %q", ev)
	}
	if len(srv.Messages(t)) != 1 {
		t.Fatal("no mail after an interrupted run")
	}
}
