package s3store_test

import (
	"os"
	"testing"

	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

func TestMain(m *testing.M) { os.Exit(rgwtest.Main(m)) }
