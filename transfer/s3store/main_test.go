package s3store_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestMain runs the tests with an RGW (rgwtest.Main); with helperEnv set the test binary is
// instead one backup process of TestConcurrentBackups, or with H_MODE=prune the prune process of
// TestKilledPrune.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		run := runBackupHelper
		if os.Getenv("H_MODE") == "prune" {
			run = runPruneHelper
		}
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(rgwtest.Main(m))
}
