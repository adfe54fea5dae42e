package sftpstore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/sftpstore"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// BenchmarkSave uploads 32 MiB files with several request sizes and depths, to choose defaults.
//
//	go test -run - -bench Save -benchtime 8x ./transfer/sftpstore
func BenchmarkSave(b *testing.B) {
	const size = 32 << 20
	s := sshtest.Start(b, sshtest.Options{})
	c := s.Dial(b)
	for _, cfg := range []sftpstore.Options{{}, {MaxPacket: 128 << 10}, {MaxPacket: 255 << 10, MaxInFlight: 16}} {
		name := "packet=" + strconv.Itoa(cfg.MaxPacket>>10) + "K/inflight=" + strconv.Itoa(cfg.MaxInFlight)
		b.Run(name, func(b *testing.B) {
			root := filepath.Join(b.TempDir(), "repo")
			st, err := sftpstore.New(c.Client, root, "bench", cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			if err := st.Create(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := store.Handle{Kind: store.KindData, Name: storetest.Name(i)}
				if err := st.Save(ctx, h, storetest.NewReader(uint64(i), size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
