package sshconn_test

import (
	"io"
	"os/exec"
	"strconv"
	"testing"

	"github.com/snapferry/snapferry/transfer/sshtest"
)

// The throughput benchmarks push 1 MiB per iteration into `cat > /dev/null` on the loopback
// sshd, once through this package's in-process client and once through OpenSSH's ssh binary,
// both with aes128-gcm@openssh.com. For the 1 GiB comparison:
//
//	go test -run - -bench Pipe -benchtime 1024x ./transfer/sshconn
const benchChunk = 1 << 20

func BenchmarkPipeInProcess(b *testing.B) {
	s := sshtest.Start(b, sshtest.Options{})
	c := s.Dial(b)
	sess, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sess.Start("cat > /dev/null"); err != nil {
		b.Fatal(err)
	}
	pump(b, stdin)
	if err := sess.Wait(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPipeOpenSSH(b *testing.B) {
	s := sshtest.Start(b, sshtest.Options{})
	sshBin := sshtest.FindTool(b, "ssh", "/usr/bin/ssh")
	cmd := exec.Command(sshBin, "-F", "/dev/null", "-i", s.ClientKey, "-p", strconv.Itoa(s.Port),
		"-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-c", "aes128-gcm@openssh.com", s.User+"@"+s.Host, "cat > /dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pump(b, stdin)
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// pump writes b.N chunks and closes w; the timer covers the writes and the remote draining them
// only up to the close, which is what a sender sees.
func pump(b *testing.B, w io.WriteCloser) {
	buf := make([]byte, benchChunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
