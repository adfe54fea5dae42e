package nbd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A real qemu-nbd serves a qcow2 image with data, holes and a persistent dirty bitmap: the client
// reads the data and zeros, and block status tells the allocated and the dirty extents apart.
func TestClientAgainstQemuNBD(t *testing.T) {
	qimg, qio := needTool(t, "qemu-img"), needTool(t, "qemu-io")
	img := filepath.Join(t.TempDir(), "d.qcow2")
	run(t, qimg, "create", "-q", "-f", "qcow2", img, "64M")
	run(t, qio, "-f", "qcow2", "-c", "write -P 0x11 0 1M", img)
	run(t, qimg, "bitmap", "--add", img, "b0")
	run(t, qio, "-f", "qcow2", "-c", "write -P 0x22 4M 64k", "-c", "write -P 0x33 40M 128k", img)
	sock := serveQemuNBD(t, img, "qcow2", "-B", "b0")
	ctx := testCtx(t)
	c, err := Dial(ctx, "unix", sock, Options{Export: "disk", MetaContexts: []string{ContextAllocation, DirtyBitmapContext("b0"), "qemu:nonexistent"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Size() != 64<<20 || !c.ReadOnly() {
		t.Fatalf("size %d read-only %v", c.Size(), c.ReadOnly())
	}
	if !c.Context(ContextAllocation) || !c.Context(DirtyBitmapContext("b0")) || c.Context("qemu:nonexistent") {
		t.Fatalf("contexts %v", c.contexts)
	}
	check := func(off, n int, want byte) {
		t.Helper()
		buf := bytes.Repeat([]byte{0xee}, n)
		if _, err := c.ReadAtContext(ctx, buf, int64(off)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, bytes.Repeat([]byte{want}, n)) {
			t.Fatalf("read %d+%d: not all %#x", off, n, want)
		}
	}
	check(0, 1<<20, 0x11)
	check(4<<20, 64<<10, 0x22)
	check(10<<20, 1<<20, 0)              // a hole
	check(40<<20, 128<<10, 0x33)         // data after holes
	big := make([]byte, MaxRequest+4096) // split into two requests
	if _, err := c.ReadAt(big, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(big[:1<<20], bytes.Repeat([]byte{0x11}, 1<<20)) || !bytes.Equal(big[4<<20:4<<20+64<<10], bytes.Repeat([]byte{0x22}, 64<<10)) {
		t.Fatal("large read differs")
	}
	if n, err := c.ReadAt(make([]byte, 10), 64<<20-5); n != 5 || err == nil {
		t.Fatalf("read past the end: %d, %v", n, err)
	}

	alloc := allExtents(t, c, ContextAllocation)
	var data []Extent
	for _, e := range alloc {
		if e.Flags&StateHole == 0 {
			data = append(data, e)
		}
	}
	want := []Extent{{0, 1 << 20, 0}, {4 << 20, 64 << 10, 0}, {40 << 20, 128 << 10, 0}}
	if !sameRanges(data, want) {
		t.Fatalf("allocated extents %v, want %v", data, want)
	}
	var dirty []Extent
	for _, e := range allExtents(t, c, DirtyBitmapContext("b0")) {
		if e.Flags&StateDirty != 0 {
			dirty = append(dirty, e)
		}
	}
	// qcow2 bitmaps have a granularity (64 KiB by default): the writes are aligned to it.
	if !sameRanges(dirty, want[1:]) {
		t.Fatalf("dirty extents %v, want %v", dirty, want[1:])
	}
	if _, err := c.BlockStatus(ctx, "qemu:nonexistent", 0, 1); err == nil {
		t.Fatal("block status of an unselected context succeeded")
	}
}

// allExtents walks the whole export asking again from where each answer ended, and checks that
// the answers tile the export without gaps.
func allExtents(t *testing.T, c *Client, name string) []Extent {
	t.Helper()
	var out []Extent
	for off := uint64(0); off < uint64(c.Size()); {
		ext, err := c.BlockStatus(testCtx(t), name, off, uint64(c.Size())-off)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ext {
			if e.Offset != off {
				t.Fatalf("extent at %d, want %d", e.Offset, off)
			}
			off += e.Length
		}
		out = append(out, ext...)
	}
	return out
}

// sameRanges compares extents by offset and length, merging neighbours first.
func sameRanges(got, want []Extent) bool {
	var m []Extent
	for _, e := range got {
		if n := len(m); n > 0 && m[n-1].Offset+m[n-1].Length == e.Offset {
			m[n-1].Length += e.Length
			continue
		}
		m = append(m, Extent{Offset: e.Offset, Length: e.Length})
	}
	if len(m) != len(want) {
		return false
	}
	for i := range m {
		if m[i].Offset != want[i].Offset || m[i].Length != want[i].Length {
			return false
		}
	}
	return true
}

// Many reads and block status requests in flight at once from several goroutines on one
// connection to a real qemu-nbd: every read gets the image's bytes at its offset.
func TestPipelinedAgainstQemuNBD(t *testing.T) {
	qimg, qio := needTool(t, "qemu-img"), needTool(t, "qemu-io")
	dir := t.TempDir()
	img := filepath.Join(dir, "d.qcow2")
	run(t, qimg, "create", "-q", "-f", "qcow2", img, "48M")
	args := []string{"-f", "qcow2"}
	for i := range 40 {
		args = append(args, "-c", fmt.Sprintf("write -P 0x%02x %d 192k", i+1, int64(i)*1200<<10))
	}
	run(t, qio, append(args, img)...)
	raw := filepath.Join(dir, "d.raw")
	run(t, qimg, "convert", "-f", "qcow2", "-O", "raw", img, raw)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	sock := serveQemuNBD(t, img, "qcow2")
	ctx := testCtx(t)
	c, err := Dial(ctx, "unix", sock, Options{Export: "disk", MetaContexts: []string{ContextAllocation}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine keeps up to 8 reads of odd sizes in flight over its quarter.
			var reads []*Read
			var bufs [][]byte
			var offs []int64
			for off := int64(w) * 12 << 20; off < int64(w+1)*12<<20; off += 300 << 10 {
				n := min(300<<10-int(off%7)*512, int(int64(w+1)*12<<20-off))
				b := make([]byte, n)
				r, err := c.StartRead(ctx, b, off)
				if err != nil {
					errs <- err
					return
				}
				reads, bufs, offs = append(reads, r), append(bufs, b), append(offs, off)
			}
			for i, r := range reads {
				if err := r.Wait(ctx); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(bufs[i], want[offs[i]:offs[i]+int64(len(bufs[i]))]) {
					errs <- fmt.Errorf("read at %d differs", offs[i])
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := c.BlockStatus(ctx, ContextAllocation, 0, uint64(c.Size())); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One ReadAt larger than MaxRequest goes out as several requests at once.
	all := make([]byte, c.Size())
	if _, err := c.ReadAtContext(ctx, all, 0); err != nil || !bytes.Equal(all, want) {
		t.Fatalf("whole read: %v", err)
	}
}
