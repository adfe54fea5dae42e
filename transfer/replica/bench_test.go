package replica_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
	"github.com/snapferry/snapferry/transfer/wire"
)

// BenchmarkIncrementalVsRsync changes 2% of the blocks of a disk image and brings two copies up
// to date: one with Push, one with `rsync --inplace --no-whole-file` (plus --ignore-times: rsync
// compares mtimes in whole seconds and would skip an image changed within the second of its last
// run, which a benchmark loop does). "pipe" runs Push against an in-process server and rsync
// locally; "ssh" runs both through OpenSSH's sshd on 127.0.0.1 (Push via the deployed serve,
// rsync via `rsync -e ssh`). It reports the time ratio (target <= 0.2), this host's CPU ratio
// and the bytes sent per byte of changed data compressed (target <= 1.2).
// SNAPFERRY_BENCH_REPLICA_MIB sets the image size (default 512), SNAPFERRY_BENCH_REPLICA_FILL the
// percentage of blocks that hold data (default 100: the worst case for Push, which skips holes
// while rsync reads them as zeros).
func BenchmarkIncrementalVsRsync(b *testing.B) {
	rsync := testkit.RequireTool(b, "rsync")
	b.Run("pipe", func(b *testing.B) {
		root, rdst := b.TempDir(), b.TempDir()
		s := inProcess(b, root, serve.Options{})
		benchIncremental(b, s.sess, func(src string) []string {
			return []string{rsync, "--ignore-times", "--inplace", "--no-whole-file", src, filepath.Join(rdst, "disk-flat.vmdk")}
		}, filepath.Join(rdst, "disk-flat.vmdk"))
	})
	b.Run("ssh", func(b *testing.B) {
		srv := sshtest.Start(b, sshtest.Options{})
		root, rdst := b.TempDir(), b.TempDir()
		self, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		spec := "ssh://" + srv.User + "@" + srv.Host + ":" + strconv.Itoa(srv.Port) + root
		be, err := storespec.Open(ctx, spec, storespec.Options{SSH: srv.ConnConfig(), Version: "bench", LocalBinary: self,
			DeployPath: filepath.Join(srv.Dir, "remote-bin", "snapferry-bench")})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		sshCmd := fmt.Sprintf("ssh -p %d -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes",
			srv.Port, srv.ClientKey, srv.KnownHosts)
		dst := filepath.Join(rdst, "disk-flat.vmdk")
		benchIncremental(b, remoteClient(b, be).Session(), func(src string) []string {
			return []string{rsync, "-e", sshCmd, "--ignore-times", "--inplace", "--no-whole-file", src, srv.User + "@" + srv.Host + ":" + dst}
		}, dst)
	})
}

// benchIncremental runs the benchmark loop: sess reaches the replica server, rsyncCmd(src) is the
// rsync command line that updates rsyncDst.
func benchIncremental(b *testing.B, sess *wire.Session, rsyncCmd func(src string) []string, rsyncDst string) {
	mib := int64(512)
	if v, err := strconv.ParseInt(os.Getenv("SNAPFERRY_BENCH_REPLICA_MIB"), 10, 64); err == nil && v > 0 {
		mib = v
	}
	fill := int64(100)
	if v, err := strconv.ParseInt(os.Getenv("SNAPFERRY_BENCH_REPLICA_FILL"), 10, 64); err == nil && v > 0 && v <= 100 {
		fill = v
	}
	const bsz = 1 << 20 // the disk is filled and changed in 1 MiB blocks
	blocks := mib << 20 / bsz
	d := newDisk(b, filepath.Join(b.TempDir(), "disk-flat.vmdk"), blocks*bsz, bsz)
	var data []int64
	for i := int64(0); i < blocks; i++ {
		if i*100/blocks < fill {
			data = append(data, i)
		}
	}
	d.fill(data...)
	files := []replica.File{{Name: "disk-flat.vmdk", Source: d.path, Disk: true}}
	if _, err := replica.Push(context.Background(), sess, "vm", files, replica.Options{}); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", "--sparse=always", d.path, rsyncDst).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var pushTime, rsyncTime, pushCPU, rsyncCPU time.Duration
	var sent, compressed int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		changed := make([]int64, 0, blocks/50)
		for len(changed) < cap(changed) || len(changed) == 0 {
			changed = append(changed, data[rng.IntN(len(data))])
		}
		d.fill(changed...)
		compressed += compressedSize(b, d, dedupe(changed)...)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU(b)
		st, err := replica.Push(context.Background(), sess, "vm", files, replica.Options{})
		if err != nil {
			b.Fatal(err)
		}
		pushTime += time.Since(start)
		pushCPU += processCPU(b) - cpu0
		sent += st.BytesSent
		b.StopTimer()
		start = time.Now()
		args := rsyncCmd(d.path)
		cmd := exec.Command(args[0], args[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("rsync: %v %s", err, out)
		}
		rsyncTime += time.Since(start)
		// rsync's own children (its receiver, ssh) count once they were waited for.
		rsyncCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(pushTime)/float64(rsyncTime), "time/rsync")
	// CPU time on this host is what a loaded hypervisor (the ESXi shell shares it with VMs)
	// pays; it is also the steadier number on a busy test machine, where wall times swing.
	b.ReportMetric(float64(pushCPU)/float64(rsyncCPU), "cpu/rsync")
	b.ReportMetric(float64(sent)/float64(compressed), "sent/compressed")
	b.ReportMetric(rsyncTime.Seconds()/float64(b.N), "rsync-s/op")
}

// processCPU is the user and system time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dedupe(xs []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
