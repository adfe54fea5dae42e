package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/nbd/nbdtest"
)

// serve starts a Server of data on a unix socket for the test.
func serve(t *testing.T, data []byte) (*Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Export{Name: "disk", Size: int64(len(data)), Data: bytes.NewReader(data)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, sock
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	return b
}

// Our client reads through our server; writes and reads past the end are refused without
// breaking the connection.
func TestServerWithClient(t *testing.T) {
	data := testData(3<<20 + 123)
	s, sock := serve(t, data)
	ctx := testCtx(t)
	c, err := Dial(ctx, "unix", sock, Options{Export: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Size() != int64(len(data)) || !c.ReadOnly() {
		t.Fatalf("size %d ro %v", c.Size(), c.ReadOnly())
	}
	got := make([]byte, len(data))
	if _, err := c.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	if s.BytesServed() != int64(len(data)) {
		t.Fatalf("served %d", s.BytesServed())
	}
	cl, err := c.p.send(ctx, cmdRead, uint64(len(data)), 10, make([]byte, 10), 0) // past the end
	if err == nil {
		err = c.p.wait(ctx, cl)
	}
	var se *ServerError
	if !errorsAs(err, &se) || se.Errno != errInvalid {
		t.Fatalf("read past the end: %v", err)
	}
	if _, err := c.ReadAt(got[:100], 5); err != nil || !bytes.Equal(got[:100], data[5:105]) {
		t.Fatalf("read after a refused one: %v", err)
	}
	if _, err := Dial(ctx, "unix", sock, Options{Export: "nope"}); err == nil {
		t.Fatal("unknown export accepted")
	}
}

// QEMU's own tools read our export: qemu-img compare finds it equal to the file it came from.
func TestServerWithQemuImg(t *testing.T) {
	qimg := needTool(t, "qemu-img")
	data := testData(4 << 20)
	f := filepath.Join(t.TempDir(), "d.raw")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, sock := serve(t, data)
	url := "nbd+unix:///disk?socket=" + sock
	if out, err := exec.Command(qimg, "compare", "-f", "raw", "-F", "raw", f, url).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
}

func errorsAs(err error, target **ServerError) bool {
	for err != nil {
		if se, ok := err.(*ServerError); ok {
			*target = se
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// FuzzServer feeds a server connection the fuzzer's client bytes after a valid client flags
// word: it must answer or hang up, never panic or hang.
func FuzzServer(f *testing.F) {
	var ok []byte
	ok = binary.BigEndian.AppendUint32(ok, 3)
	ok = binary.BigEndian.AppendUint64(ok, magicOpt)
	ok = binary.BigEndian.AppendUint32(ok, optGo)
	goReq := append(binary.BigEndian.AppendUint32(nil, 4), "disk"...)
	goReq = append(goReq, 0, 0)
	ok = binary.BigEndian.AppendUint32(ok, uint32(len(goReq)))
	ok = append(ok, goReq...)
	ok = binary.BigEndian.AppendUint32(ok, magicRequest)
	ok = append(ok, 0, 0, 0, 0)
	ok = binary.BigEndian.AppendUint64(ok, 1)
	ok = binary.BigEndian.AppendUint64(ok, 0)
	ok = binary.BigEndian.AppendUint32(ok, 512)
	f.Add(ok)
	f.Add(ok[:20])
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, client []byte) {
		s := NewServer(Export{Name: "disk", Size: 4096, Data: bytes.NewReader(make([]byte, 4096))})
		cl, sv := net.Pipe()
		go func() {
			_ = cl.SetDeadline(time.Now().Add(2 * time.Second))
			go func() { _, _ = io.Copy(io.Discard, cl) }()
			_, _ = cl.Write(client)
			cl.Close()
		}()
		_ = sv.SetDeadline(time.Now().Add(2 * time.Second))
		_ = s.serveConn(sv)
		sv.Close()
	})
}

// FuzzServerParsers drives the parsers of client bytes directly.
func FuzzServerParsers(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 1, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseRequest(b)
		if _, n, err := parseOption(b); err == nil && n > maxOptReplyLen {
			t.Fatal("oversized option accepted")
		}
		if name, infos, err := parseGoRequest(b); err == nil && 4+len(name)+2+2*len(infos) != len(b) {
			t.Fatal("GO request lengths do not add up")
		}
	})
}

// The server answers a connection's reads concurrently: with four reads in flight from our
// pipelined client, two reach the export's ReadAt at once, and each gets its own bytes.
func TestServerServesConcurrently(t *testing.T) {
	data := testData(1 << 20)
	g := &nbdtest.PairReader{Data: data}
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Export{Name: "disk", Size: int64(len(data)), Data: g})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	c, err := Dial(testCtx(t), "unix", sock, Options{Export: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bufs := make([][]byte, 4)
	var reads []*Read
	for i := range bufs {
		bufs[i] = make([]byte, 64<<10)
		r, err := c.StartRead(testCtx(t), bufs[i], int64(i)*200<<10)
		if err != nil {
			t.Fatal(err)
		}
		reads = append(reads, r)
	}
	for i, r := range reads {
		if err := r.Wait(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bufs[i], data[i*200<<10:i*200<<10+64<<10]) {
			t.Fatalf("read %d got other bytes", i)
		}
	}
	if g.Most() < 2 {
		t.Fatalf("at most %d reads served at once", g.Most())
	}
}
