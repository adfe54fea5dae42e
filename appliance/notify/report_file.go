package notify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ReportFileEnv names the environment variable through which `snapferry cron run` asks the
// snapferry command it starts for its report: when set, the command writes its Report as JSON
// to that path (WriteReportFile) before it exits, so the cron run can mail the per-VM table of
// the attempt that counted.
const ReportFileEnv = "SNAPFERRY_REPORT_FILE"

// WriteReportFile writes r as JSON to path, atomically (temp file and rename) so a reader never
// sees half a report.
func WriteReportFile(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// ReadReportFile reads a report written by WriteReportFile.
func ReadReportFile(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read report %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read report %s: %w", path, err)
	}
	return r, nil
}
