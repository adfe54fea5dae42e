package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

var allCompressions = []Compression{CompressionAuto, CompressionFast, CompressionMax, CompressionOff}

// codecSamples are blobs every codec must round-trip: compressible, random, empty-ish, tiny.
func codecSamples() [][]byte {
	im := image{seed: 9, blocks: 8}
	var out [][]byte
	for i := 0; i < im.blocks; i++ {
		if b := im.block(i); b != nil {
			out = append(out, b)
		}
	}
	return append(out, []byte("x"), bytes.Repeat([]byte{0}, 300<<10), bytes.Repeat([]byte("ab"), 200<<10))
}

// codecsOf counts the codec bytes the index records for ids.
func codecsOf(r *Repository, ids []ID) map[uint8]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[uint8]int{}
	for _, id := range ids {
		if e, ok := r.idx.lookup(id); ok {
			seen[e.comp&^compPatch]++
		}
	}
	return seen
}

// TestCompressionModesRoundTrip: each mode stores blobs a fresh reader gets back exactly, with
// the codec the mode promises, in a plain and an encrypted repository.
func TestCompressionModesRoundTrip(t *testing.T) {
	ctx := context.Background()
	want := map[Compression]uint8{CompressionAuto: compressionZstd, CompressionFast: compressionS2,
		CompressionMax: compressionZstd, CompressionOff: compressionNone}
	for _, enc := range []bool{false, true} {
		for _, mode := range allCompressions {
			dir, _, pw := newRepoEncryptedIf(t, enc)
			withPw := func(o *Options) {
				if pw != nil {
					pw(o)
				}
			}
			w := testOpen(t, dir, func(o *Options) { withPw(o); o.Compression = mode })
			var ids []ID
			for _, b := range codecSamples() {
				id := w.BlobID(b)
				if _, err := w.SaveBlob(ctx, DataBlob, id, b); err != nil {
					t.Fatalf("%s: save: %v", mode, err)
				}
				ids = append(ids, id)
			}
			mustFlush(t, w)
			rd := testOpen(t, dir, withPw)
			if got := codecsOf(rd, ids); got[want[mode]] == 0 || (mode == CompressionOff && len(got) != 1) {
				t.Errorf("%s (encrypted %v): codecs in index %v, want some %d", mode, enc, got, want[mode])
			}
			for i, b := range codecSamples() {
				got, err := rd.LoadBlob(ctx, DataBlob, ids[i], nil)
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("%s: blob %d: err %v, equal %v", mode, i, err, bytes.Equal(got, b))
				}
			}
		}
	}
}

// TestMixedCodecRepository: one repository written by runs with every mode checks clean (also
// reading every pack) and gives every blob back; the config's default applies when a run does
// not choose.
func TestMixedCodecRepository(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if _, err := Init(ctx, local.New(dir), InitOptions{BlockSize: testBlockSize, PackSize: testPackSize,
		Chunker: ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}, Compression: CompressionFast}); err != nil {
		t.Fatal(err)
	}
	stored := map[ID][]byte{}
	for i, mode := range append([]Compression{""}, allCompressions...) {
		w := testOpen(t, dir, func(o *Options) { o.Compression = mode })
		if mode == "" && w.opts.Compression != CompressionFast {
			t.Fatalf("run without a choice uses %q, want the repository default fast", w.opts.Compression)
		}
		for _, b := range codecSamples() {
			b = append([]byte{byte(i)}, b...) // distinct per run, so each run stores its own
			id := w.BlobID(b)
			if _, err := w.SaveBlob(ctx, DataBlob, id, b); err != nil {
				t.Fatal(err)
			}
			stored[id] = b
		}
		mustFlush(t, w)
	}
	r := testOpen(t, dir, nil)
	var ids []ID
	for id := range stored {
		ids = append(ids, id)
	}
	if got := codecsOf(r, ids); got[compressionNone] == 0 || got[compressionZstd] == 0 || got[compressionS2] == 0 {
		t.Fatalf("codecs in the mixed repository: %v, want none, zstd and s2", got)
	}
	rep, err := r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check --read-data of a mixed repository: %v %v", err, rep.Errors)
	}
	for id, b := range stored {
		got, err := r.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("blob %s: %v", id.Short(), err)
		}
	}
}

// TestOldConfigStillOpens: a config written before the choice existed ("compression": "zstd")
// opens with auto, and new repositories made with the default still write that word, so older
// snapferry versions keep opening them.
func TestOldConfigStillOpens(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	be := local.New(dir)
	rd, err := be.Load(ctx, store.Handle{Kind: store.KindConfig}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.NewDecoder(rd).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if raw["compression"] != "zstd" {
		t.Fatalf("default config says compression %v, want \"zstd\" (what older versions accept)", raw["compression"])
	}
	r := testOpen(t, dir, nil)
	if r.opts.Compression != CompressionAuto {
		t.Fatalf("old config opens with %q, want auto", r.opts.Compression)
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"": "", "auto": CompressionAuto, "FAST": CompressionFast,
		" max ": CompressionMax, "off": CompressionOff, "zstd": CompressionAuto} {
		if got, err := ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseCompression("lz4"); err == nil {
		t.Error("ParseCompression(lz4) accepted an unknown codec")
	}
	for _, bad := range []string{"lz4", "auto"} { // "auto" is written as "zstd" in configs
		c := Config{Compression: bad}
		if validConfigCompression(c.Compression) {
			t.Errorf("config compression %q accepted", bad)
		}
	}
}

// FuzzCodecDecode: stored bytes of any codec never panic, never allocate past the entry's raw
// size, and decode to exactly raw bytes or fail with ErrCorrupt.
func FuzzCodecDecode(f *testing.F) {
	c, err := newCodecs(1)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	for _, b := range codecSamples()[:2] {
		for _, mode := range allCompressions {
			codec, out, _ := c.encode(mode, b, nil)
			f.Add(codec, append([]byte(nil), out...), uint32(len(b)))
		}
	}
	f.Fuzz(func(t *testing.T, codec uint8, stored []byte, raw uint32) {
		raw %= 4 << 20
		out, err := c.decode(codec, stored, nil, int(raw))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(out) != int(raw) {
			t.Fatalf("codec %d decoded %d bytes, entry says %d", codec, len(out), raw)
		}
	})
}
