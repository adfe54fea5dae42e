package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Overlapping items add up on one line and the final line comes once, when the last is done.
func TestRendererOverlappingItems(t *testing.T) {
	var buf bytes.Buffer
	r := newRenderer(&buf, true)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		r.Start("disk", 100)
	}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.Add(100); r.Done() }()
	}
	wg.Wait()
	r.Close()
	var finals []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON event: %q", line)
		}
		if ev["final"] == true {
			finals = append(finals, ev)
		}
	}
	if len(finals) != 1 {
		t.Fatalf("want one final event, got %d:\n%s", len(finals), buf.String())
	}
	if finals[0]["bytes_done"].(float64) != 300 || finals[0]["bytes_total"].(float64) != 300 {
		t.Fatalf("final event %v, want 300 of 300", finals[0])
	}
}

// Off a terminal the renderer writes plain lines (cron logs), never carriage returns.
func TestRendererPlainLines(t *testing.T) {
	var buf bytes.Buffer
	r := newRenderer(&buf, false)
	r.Start("vmdk0", 2048)
	r.Add(2048)
	r.File(3)
	r.Done()
	r.Close()
	out := buf.String()
	if strings.Contains(out, "\r") || !strings.Contains(out, "vmdk0: 2.0 KiB / 2.0 KiB (100%), 3 files") {
		t.Fatalf("plain output %q", out)
	}
}
