package nbd

import (
	"bytes"
	"path/filepath"
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
