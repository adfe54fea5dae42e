package storespec_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// BenchmarkSave uploads 32 MiB files (a default pack) through each kind of store on loopback:
// the cost of the transport alone, since the disk is the same tmp folder for all.
//
//	go test -run - -bench Save -benchtime 8x ./transfer/storespec
func BenchmarkSave(b *testing.B) {
	const size = 32 << 20
	s := sshtest.Start(b, sshtest.Options{})
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, scheme := range []string{"local", "sftp", "ssh"} {
		b.Run(scheme, func(b *testing.B) {
			root := filepath.Join(b.TempDir(), "repo")
			raw := root
			if scheme != "local" {
				raw = scheme + "://" + s.User + "@" + s.Addr + root
			}
			if err := os.Mkdir(root, 0o700); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			be, err := openForBench(ctx, raw, s, self)
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			if err := be.Create(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := store.Handle{Kind: store.KindData, Name: storetest.Name(i)}
				if err := be.Save(ctx, h, storetest.NewReader(uint64(i), size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func openForBench(ctx context.Context, raw string, s *sshtest.Server, self string) (store.Backend, error) {
	opts := storespec.Options{SSH: s.ConnConfig(), Version: "bench", LocalBinary: self,
		DeployPath: filepath.Join(s.Dir, "remote-bin", "snapferry-bench")}
	return storespec.Open(ctx, raw, opts)
}
