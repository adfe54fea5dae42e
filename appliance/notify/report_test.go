package notify

import (
	"strings"
	"testing"
	"time"
)

func sampleReport() Report {
	start := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	free := int64(800 << 30)
	return Report{
		Job: "nightly", JobID: "20261122-020000-7f3a", Host: "esx01",
		Start: start, End: start.Add(41*time.Minute + 13*time.Second), Result: Partial, Attempt: 2,
		Rows: []VMRow{
			{Name: "web01", Mode: "hot", Size: 40 << 30, Changed: 1200 << 20, Stored: 512 << 20, Duration: 5 * time.Minute, Result: Success},
			{Name: "db <main>", Mode: "hot", Size: 100 << 30, Changed: 0, Stored: 0, Duration: 30 * time.Second, Result: Failure, Error: "snapshot.create: disk locked & busy"},
			{Name: "files", Mode: "files", Size: 2 << 30, Changed: 10 << 20, Stored: 3 << 20, Duration: 20 * time.Second, Result: Success},
		},
		Errors: []string{"snapshot snapferry-old left on db <main> by a crashed run, removed"},
		Totals: &Totals{Repository: "ssh://store/repo", Snapshots: 42, StoredBytes: 1 << 40, RawBytes: 3 << 40, FreeBytes: free},
	}
}

func TestReportTextErrorsFirst(t *testing.T) {
	text := sampleReport().Text()
	for _, want := range []string{
		"Result:    PARTIAL", "Finished:  2026-11-22 02:41:13 UTC (41m13s)", "Attempt:   2",
		"Errors:\n  - snapshot snapferry-old left",
		"SOURCE     MODE   SIZE       CHANGED   STORED     TIME  SPEED        RESULT\n" +
			"db <main>  hot    100.0 GiB  0 B       0 B        30s   3.3 GiB/s    failure: snapshot.create: disk locked & busy\n" +
			"web01      hot    40.0 GiB   1.2 GiB   512.0 MiB  5m0s  136.5 MiB/s  success\n" +
			"files      files  2.0 GiB    10.0 MiB  3.0 MiB    20s   102.4 MiB/s  success\n",
		"Repository ssh://store/repo: 42 snapshots, 1.0 TiB stored (3.0 TiB before deduplication and compression), 800.0 GiB free",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "db <main>  hot") > strings.Index(text, "web01") {
		t.Error("the failed VM must come first")
	}
}

func TestReportHTMLEscapesAndOrders(t *testing.T) {
	html, err := sampleReport().HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<td>db &lt;main&gt;</td>", "failure: snapshot.create: disk locked &amp; busy",
		"<th>Source</th><th>Mode</th><th>Size</th><th>Changed</th><th>Stored</th><th>Time</th><th>Speed</th><th>Result</th>",
		"<li>snapshot snapferry-old left on db &lt;main&gt; by a crashed run, removed</li>",
		"[snapferry] PARTIAL: nightly on esx01 (2 of 3 sources ok)",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<main>") {
		t.Error("unescaped VM name in HTML")
	}
	if strings.Index(html, "db &lt;main&gt;</td>") > strings.Index(html, "<td>web01</td>") {
		t.Error("the failed VM must come first")
	}
}

func TestHumanUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 40: "5.0 TiB", -1: "unknown"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %s, want %s", n, got, want)
		}
	}
	if HumanSpeed(0) != "-" || (VMRow{Size: 10}).Speed() != 0 {
		t.Error("no duration means no speed")
	}
}

func TestReportFileRoundTrip(t *testing.T) {
	path := t.TempDir() + "/report.json"
	want := sampleReport()
	if err := WriteReportFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReportFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text() != want.Text() || !got.Start.Equal(want.Start) || got.Rows[1].Duration != want.Rows[1].Duration {
		t.Fatalf("round trip changed the report:\n%s\nwant\n%s", got.Text(), want.Text())
	}
	if _, err := ReadReportFile(path + ".missing"); err == nil {
		t.Fatal("missing file must fail")
	}
}

// A report of a folder job speaks of sources, not VMs; a VM job's still of VMs.
func TestReportNamesWhatWasBackedUp(t *testing.T) {
	files := Report{Job: "nightly", Result: Success, Rows: []VMRow{{Name: "/srv/www", Mode: "files", Result: Success}}}
	if s := files.Subject(); strings.Contains(s, "VM") || !strings.Contains(s, "(1 of 1 sources ok)") {
		t.Fatalf("subject of a folder job: %q", s)
	}
	if txt := files.Text(); strings.Contains(txt, "VM") {
		t.Fatalf("text of a folder job mentions VMs:\n%s", txt)
	}
	vms := Report{Job: "nightly", Result: Success, Rows: []VMRow{{Name: "web", Mode: "hot", Result: Success}, {Name: "db", Mode: "cold", Result: Success}}}
	if s := vms.Subject(); !strings.Contains(s, "(2 of 2 VMs ok)") {
		t.Fatalf("subject of a VM job: %q", s)
	}
}
