package replica_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
)

// TestCompressionModes: every --compression word gives an identical replica; fast and auto
// send less than the changed bytes of compressible blocks, off sends them as they are.
func TestCompressionModes(t *testing.T) {
	for _, mode := range []repo.Compression{"", repo.CompressionAuto, repo.CompressionFast, repo.CompressionMax, repo.CompressionOff} {
		t.Run(fmt.Sprintf("%q", mode), func(t *testing.T) {
			v := newVM(t)
			text := bytes.Repeat([]byte("replicas of text-like guest blocks compress "), int(bs)/44+1)[:bs]
			v.disk.write(func() []byte { return text }, []int64{3, 4, 5, 6})
			s := inProcess(t, v.root, serve.Options{})
			st, err := replica.Push(context.Background(), s.sess, "vm1", v.files, replica.Options{BlockSize: bs, Compression: mode})
			must(t, err)
			v.assertSame(t)
			small := fileSize(t, v.vmx) + fileSize(t, v.nvram)
			sentData := st.BytesSent - small
			switch mode {
			case repo.CompressionOff:
				if sentData < st.BytesChanged {
					t.Errorf("off sent %d bytes of block data for %d changed bytes", sentData, st.BytesChanged)
				}
			default:
				// 7 random blocks go raw; the 4 text blocks must shrink to far less than a block.
				if limit := st.BytesChanged - 3*bs; sentData > limit {
					t.Errorf("%q sent %d bytes of block data, want <= %d", mode, sentData, limit)
				}
			}
		})
	}
}
