package remotestore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/serve"
)

// BenchmarkSaveLoad measures what the wire protocol moves through a pipe to an in-process
// server: 16 MiB files saved (with fsync) and loaded back.
func BenchmarkSaveLoad(b *testing.B) {
	c := inProcess(b, b.TempDir(), serve.Options{})
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		b.Fatal(err)
	}
	data := storetest.Data(1, 16<<20)
	b.SetBytes(int64(2 * len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := store.Handle{Kind: store.KindData, Name: fmt.Sprintf("%064x", i)}
		if err := c.Save(ctx, h, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		rd, err := c.Load(ctx, h, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rd)
		rd.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("load: %d bytes, %v", n, err)
		}
	}
}
