package device

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exercise runs the device contract on any Device: records keep their boundaries, filemarks
// separate files, the end of data is reported, skip and rewind position the head, and writing
// in the middle drops what followed.
func exercise(t *testing.T, d Device) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Rewind())
	rec := func(i int, n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }
	// file 0: two records of different sizes; file 1: one record; file 2: one record.
	must(d.WriteRecord(rec(1, 1000)))
	must(d.WriteRecord(rec(2, 10)))
	must(d.WriteFilemark())
	must(d.WriteRecord(rec(3, 4096)))
	must(d.WriteFilemark())
	must(d.WriteRecord(rec(4, 7)))
	must(d.WriteFilemark())
	must(d.Rewind())
	buf := make([]byte, 8192)
	read := func(want []byte, wantErr error) {
		t.Helper()
		n, err := d.ReadRecord(buf)
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("read: got %d, %v; want %v", n, err, wantErr)
			}
			return
		}
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("read: got %d bytes, %v; want %d bytes of %d", n, err, len(want), want[0])
		}
	}
	read(rec(1, 1000), nil)
	read(rec(2, 10), nil)
	read(nil, ErrFilemark) // past the filemark: the next read is file 1
	read(rec(3, 4096), nil)
	st, err := d.Status()
	must(err)
	if st.File != 1 || st.Block != 1 {
		t.Fatalf("status after file 1 record 0: %+v", st)
	}
	must(d.Rewind())
	must(d.SkipFiles(2))
	read(rec(4, 7), nil)
	read(nil, ErrFilemark)
	read(nil, ErrEndOfData)
	must(d.Rewind())
	must(d.SeekEnd())
	must(d.WriteRecord(rec(5, 5)))
	must(d.WriteFilemark())
	// Overwrite file 1: file 2 and the appended file 3 are gone.
	must(d.Rewind())
	must(d.SkipFiles(1))
	must(d.WriteRecord(rec(6, 6)))
	must(d.WriteFilemark())
	must(d.Rewind())
	must(d.SkipFiles(1))
	read(rec(6, 6), nil)
	read(nil, ErrFilemark)
	read(nil, ErrEndOfData)
	if err := d.SkipFiles(1); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("skip past the end: %v", err)
	}
}

func TestVirtualContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tape")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exercise(t, d)
}

func TestVirtualPersistsAndLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tape")
	d, err := Open(path, Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRecord([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFilemark(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second open of a tape in use: %v, want ErrBusy", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if v := d2.(*Virtual); v.Capacity() != 1<<20 {
		t.Fatalf("capacity after reopen: %d", v.Capacity())
	}
	buf := make([]byte, 100)
	n, err := d2.ReadRecord(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("reopened tape: %q, %v", buf[:n], err)
	}
	if _, err := d2.ReadRecord(make([]byte, 2)); !errors.Is(err, ErrFilemark) {
		t.Fatalf("filemark after reopen: %v", err)
	}
	if err := d2.WriteRecord([]byte("x")); err == nil {
		t.Fatal("write on a read-only tape succeeded")
	}
}

func TestVirtualEndOfMedium(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "tape"), Options{Capacity: 2500})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec := make([]byte, 1000)
	for i := 0; i < 2; i++ {
		if err := d.WriteRecord(rec); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := d.WriteRecord(rec); !errors.Is(err, ErrEndOfMedium) {
		t.Fatalf("third record on a 2500-byte tape: %v, want ErrEndOfMedium", err)
	}
	if err := d.WriteFilemark(); err != nil {
		t.Fatalf("filemark after end of medium: %v", err)
	}
	d.Rewind()
	d.SeekEnd()
	if st, _ := d.Status(); !st.EOD || st.File != 1 {
		t.Fatalf("status at end: %+v", st)
	}
	// The failed record was not written: two records, a filemark, end of data.
	d.Rewind()
	buf := make([]byte, 1000)
	for i := 0; i < 2; i++ {
		if _, err := d.ReadRecord(buf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.ReadRecord(buf); !errors.Is(err, ErrFilemark) {
		t.Fatalf("after two records: %v", err)
	}
	if _, err := d.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("after the filemark: %v", err)
	}
}

func TestVirtualRefusesOtherFilesAndShortBuffers(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("not a tape at all, just some text"), 0o644)
	if _, err := Open(other, Options{}); err == nil {
		t.Fatal("a text file opened as a virtual tape")
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing tape read-only: %v", err)
	}
	d, err := Open(filepath.Join(dir, "tape"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.WriteRecord(make([]byte, 100))
	d.Rewind()
	if _, err := d.ReadRecord(make([]byte, 10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("short buffer: %v", err)
	}
	if _, err := d.ReadRecord(make([]byte, 100)); err != nil {
		t.Fatalf("retry with a big buffer: %v", err)
	}
}

// TestDrive runs the contract against a real drive named by SNAPFERRY_TEST_TAPE (a /dev/nst*
// node with a scratch cartridge: it is overwritten).
func TestDrive(t *testing.T) {
	path := os.Getenv("SNAPFERRY_TEST_TAPE")
	if path == "" {
		t.Skip("no tape drive: set SNAPFERRY_TEST_TAPE=/dev/nstX (scratch cartridge, it is overwritten)")
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, ok := d.(*Drive); !ok {
		t.Fatalf("%s opened as %T, want a drive", path, d)
	}
	exercise(t, d)
}

// TestVirtualTornTail: a writer killed mid-record leaves a cut-off entry. Reading reports the
// damage; appending replaces it.
func TestVirtualTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tape")
	d, _ := Open(path, Options{})
	d.WriteRecord([]byte("complete"))
	d.WriteFilemark()
	d.WriteRecord(bytes.Repeat([]byte{9}, 1000))
	d.Close()
	fi, _ := os.Stat(path)
	os.Truncate(path, fi.Size()-400)
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SkipFiles(1)
	if _, err := d.ReadRecord(make([]byte, 2000)); !errors.Is(err, errTorn) || !strings.Contains(err.Error(), "file 1, record 0") {
		t.Fatalf("reading a torn record: %v", err)
	}
	d.Rewind()
	if err := d.SeekEnd(); err != nil {
		t.Fatalf("seek end over a torn tail: %v", err)
	}
	if st, _ := d.Status(); st.File != 1 || st.Block != 0 {
		t.Fatalf("end of data after the torn tail: %+v", st)
	}
	if err := d.WriteRecord([]byte("new")); err != nil {
		t.Fatal(err)
	}
	d.Rewind()
	d.SkipFiles(1)
	buf := make([]byte, 100)
	if n, err := d.ReadRecord(buf); err != nil || string(buf[:n]) != "new" {
		t.Fatalf("record written over the torn tail: %q %v", buf[:n], err)
	}
	if _, err := d.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("after it: %v", err)
	}
}
