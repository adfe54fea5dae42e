package tape_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/device"
)

// TestBackupSeekRestore writes three image save sets to one volume and restores the middle one:
// it lies in file 2, and the restore reads only that file's records.
func TestBackupSeekRestore(t *testing.T) {
	dir := t.TempDir()
	d := newDrive(t, filepath.Join(dir, "tape"))
	label(t, d, "weekly", "VOL001")
	s, err := d.Begin(context.Background(), "weekly")
	if err != nil {
		t.Fatal(err)
	}
	var sets []tape.SetEntry
	for i := 0; i < 3; i++ {
		img := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		makeImage(t, img, 4<<20, uint64(i+1), 0, 3, 20, 63)
		sets = append(sets, writeImageSet(t, s, img))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, e := range sets {
		if len(e.Parts) != 1 || e.Parts[0].File != int64(i+1) || e.Parts[0].Volume != "VOL001" || !e.Complete {
			t.Fatalf("set %d: %+v", i, e)
		}
	}
	cat, _ := d.Catalog.Load()
	if v := cat.Volume("VOL001"); v == nil || v.Files != 5 || v.Pool != "weekly" {
		t.Fatalf("volume in catalog: %+v (want 5 files: label, 3 sets, catalog copy)", v)
	}
	reads := 0
	d.Open = func(p string, o device.Options) (device.Device, error) {
		dev, err := device.Open(p, o)
		if err != nil {
			return nil, err
		}
		return countingDevice{dev, &reads}, nil
	}
	out := filepath.Join(dir, "out.img")
	if err := restoreSet(t, d, sets[1].ID[:8], out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, filepath.Join(dir, "disk1.img"), out)
	// label + its filemark, then the set's own records (header, data, trailer) only.
	setRecords := int(sets[1].Bytes/(testTapeBlock-tape.RecordHeader)) + 3
	if reads > 2+setRecords+1 {
		t.Fatalf("restore of file 2 read %d records; the set has about %d: it did not skip file 1", reads, setRecords)
	}
	// Appending in a second session starts after the catalog copy.
	s, err = d.Begin(context.Background(), "weekly")
	if err != nil {
		t.Fatal(err)
	}
	e := writeImageSet(t, s, filepath.Join(dir, "disk0.img"))
	s.Close()
	if e.Parts[0].File != 5 {
		t.Fatalf("appended set in file %d, want 5", e.Parts[0].File)
	}
	d.Open = nil
	if err := restoreSet(t, d, e.ID, filepath.Join(dir, "out0.img")); err != nil {
		t.Fatal(err)
	}
	sameFile(t, filepath.Join(dir, "disk0.img"), filepath.Join(dir, "out0.img"))
}

// swapHook is a changer script that loads volume files kept in dir by relinking the drive path:
// the wanted volume, or VOL2 when any fresh volume will do.
func swapHook(dir string) string {
	return fmt.Sprintf(`v=${SNAPFERRY_TAPE_VOLUME:-VOL2}; ln -sfn %q/"$v" "$SNAPFERRY_TAPE_DEVICE"`, dir)
}

func loadTape(t *testing.T, drive, target string) {
	t.Helper()
	os.Remove(drive)
	if err := os.Symlink(target, drive); err != nil {
		t.Fatal(err)
	}
}

// spanSetup labels VOL1 (small) and VOL2 in pool p, writes one image that does not fit VOL1 and
// returns the drive (holding VOL2 afterwards), the image and its set.
func spanSetup(t *testing.T) (string, *tape.Drive, string, tape.SetEntry) {
	dir := t.TempDir()
	drive := filepath.Join(dir, "drive")
	d := newDrive(t, drive)
	d.Capacity = 40 * testTapeBlock
	for _, v := range []string{"VOL1", "VOL2"} {
		loadTape(t, drive, filepath.Join(dir, v))
		label(t, d, "p", v)
	}
	loadTape(t, drive, filepath.Join(dir, "VOL1"))
	d.Changer = tape.HookChanger(swapHook(dir), nil)
	img := filepath.Join(dir, "big.img")
	makeImage(t, img, 8<<20, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 100, 101)
	s, err := d.Begin(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	e := writeImageSet(t, s, img)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, d, img, e
}

func TestSpanningTwoVolumes(t *testing.T) {
	dir, d, img, e := spanSetup(t)
	if len(e.Parts) != 2 || e.Parts[0].Volume != "VOL1" || e.Parts[1].Volume != "VOL2" || e.Parts[1].File != 1 || e.Parts[1].Offset == 0 {
		t.Fatalf("spanned set parts: %+v", e.Parts)
	}
	cat, _ := d.Catalog.Load()
	if !cat.Volume("VOL1").Full || cat.Volume("VOL2").Full {
		t.Fatalf("volumes: %+v", cat.Volumes)
	}
	// VOL2 is in the drive: the restore has the changer load VOL1, then VOL2 again.
	out := filepath.Join(dir, "out.img")
	if err := restoreSet(t, d, e.ID, out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, img, out)
	// Without a changer the restore says which volume to load.
	d.Changer = nil
	err := restoreSet(t, d, e.ID, filepath.Join(dir, "out2.img"))
	if err == nil || !strings.Contains(err.Error(), "VOL1") || !strings.Contains(err.Error(), "--changer") {
		t.Fatalf("restore without changer: %v", err)
	}
}

// TestSpanningWithoutChanger: a full volume with no changer stops with a message that names the
// volume and the flag.
func TestSpanningWithoutChanger(t *testing.T) {
	dir := t.TempDir()
	d := newDrive(t, filepath.Join(dir, "tape"))
	d.Capacity = 20 * testTapeBlock
	label(t, d, "p", "SMALL")
	img := filepath.Join(dir, "big.img")
	makeImage(t, img, 8<<20, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	s, err := d.Begin(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.BeginSet(tape.SetHeader{Source: img})
	enc, _ := tape.NewEncoder(w, testDiskBlock)
	data := memblobs.RandBytes(5, 32*testTapeBlock)
	_, err = enc.SaveBlob(context.Background(), 1, enc.BlobID(data), data)
	if err == nil {
		_, err = w.Finish(tape.SetInfo{})
	}
	if err == nil || !strings.Contains(err.Error(), "SMALL") || !strings.Contains(err.Error(), "--changer") {
		t.Fatalf("full volume without changer: %v", err)
	}
	s.Close()
	cat, _ := d.Catalog.Load()
	if len(cat.Sets) != 1 || cat.Sets[0].Complete {
		t.Fatalf("catalog after the failed set: %+v", cat.Sets)
	}
}

// TestMultiplexedStreams writes three sets at once: they share one tape file on three streams
// and each restores on its own.
func TestMultiplexedStreams(t *testing.T) {
	dir := t.TempDir()
	d := newDrive(t, filepath.Join(dir, "tape"))
	label(t, d, "default", "MUX")
	s, err := d.Begin(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	// All three sets are open before any data is written, as with three VMs backed up at once.
	sets := make([]tape.SetEntry, 3)
	writers := make([]*tape.SetWriter, 3)
	for i := range writers {
		if writers[i], err = s.BeginSet(tape.SetHeader{Source: fmt.Sprintf("vm%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range sets {
		img := filepath.Join(dir, fmt.Sprintf("vm%d.img", i))
		makeImage(t, img, 4<<20, uint64(10+i), 0, 5, 6, 7, 30)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sets[i] = fillImageSet(t, writers[i], img)
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	streams := map[uint32]bool{}
	for _, e := range sets {
		streams[e.Parts[0].Stream] = true
	}
	files := map[int64]bool{}
	for _, e := range sets {
		files[e.Parts[0].File] = true
	}
	if len(streams) != 3 || len(files) != 1 {
		t.Fatalf("concurrent sets were not multiplexed: %+v", sets)
	}
	for i, e := range sets {
		out := filepath.Join(dir, fmt.Sprintf("out%d.img", i))
		if err := restoreSet(t, d, e.ID, out); err != nil {
			t.Fatal(err)
		}
		sameFile(t, filepath.Join(dir, fmt.Sprintf("vm%d.img", i)), out)
	}
}

// TestBadChecksumNamesVolumeAndFile damages one data record of file 2.
func TestBadChecksumNamesVolumeAndFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tape")
	d := newDrive(t, path)
	label(t, d, "default", "DMG01")
	s, _ := d.Begin(context.Background(), "default")
	var sets []tape.SetEntry
	for i := 0; i < 2; i++ {
		img := filepath.Join(dir, fmt.Sprintf("d%d.img", i))
		makeImage(t, img, 1<<20, uint64(i+40), 0, 9)
		sets = append(sets, writeImageSet(t, s, img))
	}
	s.Close()
	off := virtualRecordOffset(t, path, 2, 3) + 100
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0x40
	f.WriteAt(b, off)
	f.Close()
	err := restoreSet(t, d, sets[1].ID, filepath.Join(dir, "out.img"))
	var re *tape.RecordError
	if !errors.As(err, &re) || !errors.Is(err, tape.ErrChecksum) || re.Volume != "DMG01" || re.File != 2 || re.Record != 3 {
		t.Fatalf("damaged record: %v", err)
	}
	if !strings.Contains(err.Error(), "volume DMG01 file 2 record 3") {
		t.Fatalf("message does not locate the record: %v", err)
	}
	// The undamaged set still restores; scan reports the damage and keeps going.
	if err := restoreSet(t, d, sets[0].ID, filepath.Join(dir, "out0.img")); err != nil {
		t.Fatal(err)
	}
	vs, _, err := d.Scan(context.Background())
	if err != nil || len(vs.Problems) != 1 || !strings.Contains(vs.Problems[0].Error(), "file 2 record 3") || len(vs.Sets) != 2 {
		t.Fatalf("scan of a damaged volume: %v, %+v", err, vs)
	}
}

// TestScanRebuildsCatalog loses the catalog of a spanned backup; scanning only the second volume
// brings back both parts (the first from the catalog copy on VOL2) and the restore works.
func TestScanRebuildsCatalog(t *testing.T) {
	dir, d, img, e := spanSetup(t)
	before, _ := d.Catalog.Load()
	if err := os.RemoveAll(filepath.Dir(d.Catalog.Path)); err != nil {
		t.Fatal(err)
	}
	vs, cat, err := d.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if vs.Label.Volume != "VOL2" || vs.Copy == nil {
		t.Fatalf("scan of VOL2: %+v", vs)
	}
	got := cat.Set(e.ID)
	if got == nil || !got.Complete || len(got.Parts) != 2 || got.Checksum != e.Checksum {
		t.Fatalf("rebuilt set: %+v\nwant %+v", got, e)
	}
	if len(cat.Volumes) != len(before.Volumes) {
		t.Fatalf("rebuilt volumes %+v, before %+v", cat.Volumes, before.Volumes)
	}
	out := filepath.Join(dir, "out.img")
	if err := restoreSet(t, d, "latest", out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, img, out)
	// Scanning VOL1 too changes nothing about the set.
	loadTape(t, d.Path, filepath.Join(dir, "VOL1"))
	if _, cat, err = d.Scan(context.Background()); err != nil || len(cat.Set(e.ID).Parts) != 2 {
		t.Fatalf("scan of VOL1: %v %+v", err, cat.Set(e.ID))
	}
}

func TestRefusesUnlabeledAndWrongPool(t *testing.T) {
	dir := t.TempDir()
	d := newDrive(t, filepath.Join(dir, "tape"))
	if _, err := d.Begin(context.Background(), "default"); !errors.Is(err, tape.ErrUnlabeled) || !strings.Contains(err.Error(), "tape label") {
		t.Fatalf("blank tape: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "junk"), nil, 0o644)
	label(t, d, "daily", "D1")
	_, err := d.Begin(context.Background(), "weekly")
	if !errors.Is(err, tape.ErrWrongPool) || !strings.Contains(err.Error(), `"daily"`) {
		t.Fatalf("wrong pool: %v", err)
	}
	if _, err := d.Label(context.Background(), tape.LabelOptions{Pool: "weekly"}); !errors.Is(err, tape.ErrLabeled) {
		t.Fatalf("label over a label: %v", err)
	}
	if _, err := d.Label(context.Background(), tape.LabelOptions{Pool: "weekly", Volume: "W1", Force: true}); err != nil {
		t.Fatal(err)
	}
	cat, _ := d.Catalog.Load()
	if v := cat.Volume("W1"); v == nil || v.Sequence != 1 {
		t.Fatalf("relabeled volume: %+v", cat.Volumes)
	}
}

// TestPromptChanger: an operator is told which volume to load and the tape is used after Enter.
func TestPromptChanger(t *testing.T) {
	var out strings.Builder
	ch := tape.PromptChanger(strings.NewReader("\n"), &out)
	if err := ch(context.Background(), tape.VolumeRequest{Device: "/dev/nst0", Pool: "p", Volume: "V7"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Load volume V7 of pool p into /dev/nst0") {
		t.Fatalf("prompt: %q", out.String())
	}
	if err := ch(context.Background(), tape.VolumeRequest{Pool: "p", Full: "V7"}); err == nil {
		t.Fatal("prompt with no operator input (EOF) succeeded")
	}
}

// TestEncoderDeduplicatesWithinSet: a blob repeated in a set is written once; Unpack restores
// every blob verified against its id.
func TestEncoderDeduplicatesWithinSet(t *testing.T) {
	var stream bytes.Buffer
	enc, err := tape.NewEncoder(&stream, testDiskBlock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := memblobs.RandBytes(1, 50000), bytes.Repeat([]byte("compressible "), 4000)
	for i, blob := range [][]byte{a, b, a, b} {
		added, err := enc.SaveBlob(ctx, repo.DataBlob, enc.BlobID(blob), blob)
		if err != nil || added != (i < 2) {
			t.Fatalf("blob %d: added %v, %v", i, added, err)
		}
	}
	_, info, err := enc.Finish(&repo.Snapshot{Source: "x"})
	if err != nil || info.Blobs != 2 || info.Raw != int64(len(a)+len(b)) {
		t.Fatalf("finish: %+v %v", info, err)
	}
	if stream.Len() > len(a)+len(b)/4+200 {
		t.Fatalf("stream of %d bytes: blobs repeated or not compressed", stream.Len())
	}
	bs := memblobs.New(testDiskBlock)
	sn, err := tape.Unpack(ctx, bytes.NewReader(stream.Bytes()), bs)
	if err != nil || sn.Source != "x" || bs.Len(repo.DataBlob) != 2 {
		t.Fatalf("unpack: %v %+v", err, sn)
	}
	// A flipped byte in a blob is caught by its id.
	bad := append([]byte(nil), stream.Bytes()...)
	bad[60] ^= 1
	if _, err := tape.Unpack(ctx, bytes.NewReader(bad), memblobs.New(testDiskBlock)); err == nil || !strings.Contains(err.Error(), "does not match its id") {
		t.Fatalf("damaged blob: %v", err)
	}
}
