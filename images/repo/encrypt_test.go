package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// fastKDF keeps tests quick; the real default is exercised by TestDefaultKDFCost.
var fastKDF = KDFParams{N: 1 << 10, R: 8, P: 1}

const testPassword = "correct horse battery staple"

func newEncryptedRepo(t testing.TB) (string, *Repository) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	_, err := Init(context.Background(), local.New(dir), InitOptions{BlockSize: testBlockSize, PackSize: testPackSize,
		Chunker: ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}, Password: []byte(testPassword), KDF: fastKDF})
	if err != nil {
		t.Fatalf("init encrypted %s: %v", dir, err)
	}
	return dir, testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
}

// newRepoEncryptedIf makes a plain or an encrypted repository and returns the Options change
// that opens it again.
func newRepoEncryptedIf(t testing.TB, enc bool) (string, *Repository, func(*Options)) {
	t.Helper()
	if !enc {
		dir, r := newRepo(t)
		return dir, r, nil
	}
	dir, r := newEncryptedRepo(t)
	return dir, r, func(o *Options) { o.Password = []byte(testPassword) }
}

func openWith(dir, password string) (*Repository, error) {
	return Open(context.Background(), local.New(dir), Options{Password: []byte(password), Hostname: "testhost"})
}

func TestEncryptedRoundTripCheckPrune(t *testing.T) {
	ctx := context.Background()
	dir, r := newEncryptedRepo(t)
	cfg := r.Config()
	if cfg.Version != 3 || cfg.Encryption != EncryptionXChaCha || !r.Encrypted() {
		t.Fatalf("config %+v", cfg)
	}
	imA, imB := image{seed: 50, blocks: 40}, image{seed: 51, blocks: 40}
	a := backupImage(t, r, "vm", imA, t0)
	b := backupImage(t, r, "vm", imB, t0.Add(time.Hour))

	r2 := testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
	verifyImage(t, r2, a, imA)
	verifyImage(t, r2, b, imB)
	if rep := mustCheck(t, r2, true); rep.BlobsRead == 0 || rep.Snapshots != 2 {
		t.Fatalf("check read nothing: %+v", rep)
	}
	// Rebuilding the index reads the sealed pack headers.
	if rep, err := r2.RebuildIndex(ctx); err != nil || rep.Packs == 0 || len(rep.BadPacks) != 0 {
		t.Fatalf("rebuild index: %+v, %v", rep, err)
	}
	// Forget and prune (repacking sealed blobs as they are) leave a readable repository.
	if _, err := r2.Forget(ctx, Policy{Last: 1}, SnapshotFilter{}, false); err != nil {
		t.Fatal(err)
	}
	if rep, err := r2.Prune(ctx, PruneOptions{}); err != nil || rep.PacksDeleted == 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	r3 := testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
	verifyImage(t, r3, b, imB)
	mustCheck(t, r3, true)
}

// Prune copies sealed blobs into new packs with sealed headers, verifying each on the way.
func TestEncryptedPruneRepacks(t *testing.T) {
	dir, _ := newEncryptedRepo(t)
	pw := func(o *Options) { o.Password = []byte(testPassword); o.PackSize = 4 << 20; o.Packers = 1 }
	r := testOpen(t, dir, pw)
	orphan, kept := image{seed: 55, blocks: 20}, image{seed: 56, blocks: 10}
	for i := 0; i < orphan.blocks; i++ {
		if b := orphan.block(i); b != nil {
			mustSave(t, r, DataBlob, b)
		}
	}
	s := backupImage(t, r, "vm", kept, t0)
	rep, err := r.Prune(context.Background(), PruneOptions{})
	if err != nil || rep.PacksRepacked != 1 || rep.PacksWritten != 1 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	r2 := testOpen(t, dir, pw)
	verifyImage(t, r2, s, kept)
	mustCheck(t, r2, true)
}

// The store sees neither plaintext nor plain BLAKE3 ids of the content.
func TestEncryptedStoreLearnsNothing(t *testing.T) {
	_, r := newEncryptedRepo(t)
	marker := bytes.Repeat([]byte("TOPSECRET-PAYROLL "), 2000)
	plainID := ID(blake3.Sum256(marker))
	id := r.BlobID(marker)
	if id == plainID {
		t.Fatal("blob id is the unkeyed hash: a store could test for known content")
	}
	_, other := newEncryptedRepo(t)
	if other.BlobID(marker) == id {
		t.Fatal("two repositories give the same id to the same content")
	}
	mustSaveBlob(t, r, id, marker)
	sid, err := r.SaveSnapshot(context.Background(), &Snapshot{Time: t0, Host: "secret-host-name", Kind: SnapshotImage,
		Source: "payroll-vm", Disks: []Disk{{Name: "d", Map: nil}}})
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range disktest.TreeState(t, r.Backend().Location()) {
		for _, leak := range []string{"TOPSECRET", "payroll-vm", "secret-host-name", plainID.String(), id.String(),
			string(plainID[:8]), string(id[:8]), "testhost"} {
			if strings.Contains(content, leak) {
				t.Errorf("%s contains %q", p, leak)
			}
		}
	}
	if sn, err := r.LoadSnapshot(context.Background(), sid); err != nil || sn.Source != "payroll-vm" {
		t.Fatalf("load snapshot: %+v, %v", sn, err)
	}
}

func mustSaveBlob(t testing.TB, r *Repository, id ID, b []byte) {
	t.Helper()
	if _, err := r.SaveBlob(context.Background(), DataBlob, id, b); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedWrongOrMissingPassword(t *testing.T) {
	dir, r := newEncryptedRepo(t)
	backupImage(t, r, "vm", image{seed: 52, blocks: 6}, t0)
	r.Close()
	before := disktest.TreeState(t, dir)
	_, err := openWith(dir, "wrong password")
	if !errors.Is(err, ErrWrongPassword) || !IsPermanent(err) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong password") && strings.Contains(err.Error(), `"wrong password"`) {
		t.Errorf("the error quotes the password: %v", err)
	}
	if _, err := openWith(dir, ""); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), "SNAPFERRY_PASSWORD") {
		t.Fatalf("no password: %v", err)
	}
	after := disktest.TreeState(t, dir)
	if len(after) != len(before) {
		t.Fatalf("failed opens changed the repository: %d files, was %d", len(after), len(before))
	}
	for p, c := range before {
		if after[p] != c {
			t.Fatalf("failed opens changed %s", p)
		}
	}
}

// A password for a repository whose config says "none" is refused: the config may have been
// swapped by the store to make this host write plaintext.
func TestPasswordForPlainRepositoryRefused(t *testing.T) {
	dir, r := newRepo(t)
	r.Close()
	if _, err := openWith(dir, testPassword); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("open of a plain repository with a password: %v", err)
	}
	if _, err := r.AddKey(context.Background(), []byte("x"), fastKDF); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("add key to a plain repository: %v", err)
	}
}

func TestKeyAddListRemove(t *testing.T) {
	ctx := context.Background()
	dir, r := newEncryptedRepo(t)
	s := backupImage(t, r, "vm", image{seed: 53, blocks: 6}, t0)
	second, err := r.AddKey(ctx, []byte("second password"), fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("list keys: %+v, %v", keys, err)
	}
	first := keys[0].ID
	if !keys[0].Current || keys[1].Current || keys[1].ID != second || keys[1].Params != fastKDF || keys[0].KDF != "scrypt" {
		t.Fatalf("keys: %+v", keys)
	}
	r2, err := openWith(dir, "second password")
	if err != nil {
		t.Fatalf("open with the added key: %v", err)
	}
	defer r2.Close()
	verifyImage(t, r2, s, image{seed: 53, blocks: 6})
	if err := r.RemoveKey(ctx, first); err == nil || !strings.Contains(err.Error(), "opened the repository with") {
		t.Fatalf("remove of the current key: %v", err)
	}
	if err := r2.RemoveKey(ctx, first); err != nil {
		t.Fatalf("remove the first key with the second: %v", err)
	}
	if _, err := openWith(dir, testPassword); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("removed password still opens: %v", err)
	}
	// The last key cannot go, whichever value asks.
	if err := r.RemoveKey(ctx, second); err == nil || !strings.Contains(err.Error(), "last key") {
		t.Fatalf("remove of the last key: %v", err)
	}
	if err := r2.RemoveKey(ctx, ID{1}); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("remove of a missing key: %v", err)
	}
}

// Every kind of tampering is detected and names where: a blob (pack and offset), a pack
// header, an index file, a snapshot, a blob moved between ids, a planted plaintext pack.
func TestEncryptedTamperingDetected(t *testing.T) {
	ctx := context.Background()
	dir, r := newEncryptedRepo(t)
	im := image{seed: 54, blocks: 12}
	sid := backupImage(t, r, "vm", im, t0)
	root := r.Backend().Location()
	var packs []string
	filepath.WalkDir(filepath.Join(root, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			packs = append(packs, p)
		}
		return err
	})
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	pack := packs[0]
	orig, _ := os.ReadFile(pack)
	flip := func(p string, off int) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0x40
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A flipped byte in the first blob: check --read-data names pack, blob and offset 0, and a
	// restore of that blob fails instead of returning other bytes.
	flip(pack, 30)
	rep, err := r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	packName := filepath.Base(pack)
	if rep.OK() || !strings.Contains(rep.Errors[0].Object, packName) || !strings.Contains(rep.Errors[0].Message, "at offset 0") ||
		!strings.Contains(rep.Errors[0].Message, "authentication failed") || len(rep.DamagedSnapshots) != 1 {
		t.Fatalf("check after a flipped blob byte: %+v", rep)
	}
	r2 := testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
	loadErr := loadAllOf(t, r2, sid)
	if !errors.Is(loadErr, ErrCorrupt) || !strings.Contains(loadErr.Error(), packName[:8]) || !strings.Contains(loadErr.Error(), "at offset") {
		t.Fatalf("restore of a tampered blob: %v", loadErr)
	}

	// A flipped byte in the sealed pack header, with the CRC fixed up so only the AEAD can tell.
	os.WriteFile(pack, orig, 0o600)
	mustCheck(t, testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) }), true)
	b := append([]byte(nil), orig...)
	tail := b[len(b)-packTrailerSize:]
	hlen := int(binary.LittleEndian.Uint32(tail))
	hdr := b[len(b)-packTrailerSize-hlen : len(b)-packTrailerSize]
	hdr[30] ^= 1
	binary.LittleEndian.PutUint32(tail[4:], crc32.Checksum(hdr, crcTable))
	os.WriteFile(pack, b, 0o600)
	rb, err := testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) }).RebuildIndex(ctx)
	if err == nil && len(rb.BadPacks) == 0 {
		t.Fatalf("rebuild-index accepted a tampered header: %+v", rb)
	}
	if err == nil && !strings.Contains(strings.Join(rb.BadPackMessages, " "), "authentication failed") {
		t.Fatalf("rebuild-index bad-pack message: %v", rb.BadPackMessages)
	}
	os.WriteFile(pack, orig, 0o600)

	// A snapshot file and an index file with a changed byte whose names are fixed up to match
	// (a store host can do that): the envelope still fails.
	for _, k := range []store.Kind{store.KindSnapshots, store.KindIndex} {
		ents, _ := os.ReadDir(filepath.Join(root, string(k)))
		p := filepath.Join(root, string(k), ents[0].Name())
		c, _ := os.ReadFile(p)
		c[len(c)/2] ^= 1
		os.Remove(p)
		os.WriteFile(filepath.Join(root, string(k), ID(blake3.Sum256(c)).String()), c, 0o600)
	}
	r4 := testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
	if probs := r4.IndexProblems(); len(probs) != 1 || !strings.Contains(probs[0].Error(), "authentication failed") {
		t.Fatalf("index problems: %v", probs)
	}
	rep, err = r4.Check(ctx, CheckOptions{})
	if err != nil || rep.OK() {
		t.Fatalf("check of tampered manifests: %+v, %v", rep, err)
	}
	var kinds []string
	for _, p := range rep.Errors {
		kinds = append(kinds, p.Kind)
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "index") || !strings.Contains(got, "snapshot") {
		t.Fatalf("check errors %v", rep.Errors)
	}
}

// loadAllOf loads every blob a snapshot names and returns the first error.
func loadAllOf(t testing.TB, r *Repository, sid ID) error {
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		return err
	}
	for _, cid := range sn.Disks[0].Map {
		mb, err := r.LoadBlob(ctx, TreeBlob, cid, nil)
		if err != nil {
			return err
		}
		var c BlockMapChunk
		if err := c.UnmarshalBinary(mb); err != nil {
			return err
		}
		for _, id := range c.IDs {
			if !id.IsZero() {
				if _, err := r.LoadBlob(ctx, DataBlob, id, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Sealed bytes moved under another id, and plaintext planted in an encrypted repository, are
// refused by decodeBlob.
func TestEncryptedBlobSwapAndPlantedPlaintext(t *testing.T) {
	_, r := newEncryptedRepo(t)
	x, y := []byte("blob x content"), []byte("blob y content")
	ix, iy := r.BlobID(x), r.BlobID(y)
	sealedX := r.crypt.seal(nil, x, ix[:])
	if _, err := r.decodeBlob(packEntry{ID: ix, Flags: blobFlagSealed, Raw: uint32(len(x))}, sealedX, nil); err != nil {
		t.Fatalf("genuine blob: %v", err)
	}
	if _, err := r.decodeBlob(packEntry{ID: iy, Flags: blobFlagSealed, Raw: uint32(len(x))}, sealedX, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("blob under another id: %v", err)
	}
	if _, err := r.decodeBlob(packEntry{ID: ix, Raw: uint32(len(x))}, x, nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "planted") {
		t.Fatalf("plaintext blob in an encrypted repository: %v", err)
	}
	// A plain pack header in an encrypted repository (and the reverse) does not decode.
	entries := []packEntry{{Type: DataBlob, Stored: uint32(len(y)), Raw: uint32(len(y)), ID: iy}}
	plainPack := append(append([]byte(nil), y...), encodePackTail(entries, nil)...)
	if _, err := decodePackTail(plainPack, int64(len(plainPack)), r.crypt); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("plain pack header in an encrypted repository: %v", err)
	}
	entries[0].Flags, entries[0].Stored = blobFlagSealed, uint32(len(y)+sealOverhead)
	sealedPack := append(r.crypt.seal(nil, y, iy[:]), encodePackTail(entries, r.crypt)...)
	if _, err := decodePackTail(sealedPack, int64(len(sealedPack)), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("sealed pack header in a plain repository: %v", err)
	}
	got, err := decodePackTail(sealedPack, int64(len(sealedPack)), r.crypt)
	if err != nil || len(got) != 1 || got[0].ID != iy {
		t.Fatalf("sealed pack header: %+v, %v", got, err)
	}
}

// Format checks: version 1 configs must be plain, version 2 configs encrypted; version 3 (what
// init writes) is either.
func TestEncryptedConfigVersion(t *testing.T) {
	dir, r := newEncryptedRepo(t)
	r.Close()
	p := filepath.Join(dir, "config")
	b, _ := os.ReadFile(p)
	tampered := bytes.Replace(b, []byte(`"version": 3`), []byte(`"version": 1`), 1)
	os.WriteFile(p, tampered, 0o600)
	if _, err := openWith(dir, testPassword); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 1 repositories are unencrypted") {
		t.Fatalf("version 1 config with encryption: %v", err)
	}
	// A store that swaps the config for an unencrypted one gets refused by a client that has
	// a password (TestPasswordForPlainRepositoryRefused); one that deletes the keys gets
	// "no key file".
	os.WriteFile(p, b, 0o600)
	ents, _ := os.ReadDir(filepath.Join(dir, "keys"))
	for _, e := range ents {
		os.Remove(filepath.Join(dir, "keys", e.Name()))
	}
	if _, err := openWith(dir, testPassword); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "no key file") {
		t.Fatalf("open without key files: %v", err)
	}
}

// A key file from a compromised store cannot make the reader allocate unbounded memory.
func TestKeyFileParamsBounded(t *testing.T) {
	for _, p := range []KDFParams{{N: 1 << 30, R: 8, P: 1}, {N: 1000, R: 8, P: 1}, {N: 1 << 10, R: 0, P: 1}, {N: 1 << 14, R: 8, P: 64}} {
		if err := p.validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := (KDFParams{}).orDefault().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestDefaultKDFCost measures the default derivation once, so the cost in docs/security.md is a
// measured number (and a regression to a cheap KDF shows up).
func TestDefaultKDFCost(t *testing.T) {
	mk, _ := newMasterKey("r")
	start := time.Now()
	b, err := sealMasterKey(mk, []byte("pw"), KDFParams{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kf, err := decodeKeyFile(b)
	if err != nil || kf.N != DefaultKDFN || kf.R != DefaultKDFR || kf.P != DefaultKDFP {
		t.Fatalf("key file %+v, %v", kf, err)
	}
	if _, err := kf.unseal([]byte("pw"), "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := kf.unseal([]byte("pw"), "other repository"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("key of another repository: %v", err)
	}
	t.Logf("two default scrypt derivations: %v", time.Since(start))
}

// Repositories of format 1 (plain) and 2 (encrypted) still open, read and back up; they never
// get patches. A plain config that claims version 2 is refused.
func TestOlderFormatVersions(t *testing.T) {
	setVersion := func(t *testing.T, dir string, from, to int) {
		t.Helper()
		p := filepath.Join(dir, "config")
		b, _ := os.ReadFile(p)
		nb := bytes.Replace(b, []byte(fmt.Sprintf(`"version": %d`, from)), []byte(fmt.Sprintf(`"version": %d`, to)), 1)
		if bytes.Equal(b, nb) {
			t.Fatalf("config has no version %d: %s", from, b)
		}
		if err := os.WriteFile(p, nb, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	im := image{seed: 3, blocks: 12}
	t.Run("v1", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "repo")
		testInit(t, dir)
		setVersion(t, dir, 3, 1)
		r := testOpen(t, dir, nil)
		if r.PatchesEnabled() || r.Config().Version != 1 {
			t.Fatalf("v1: patches enabled %v, version %d", r.PatchesEnabled(), r.Config().Version)
		}
		sid := backupImage(t, r, "v1", im, time.Now())
		verifyImage(t, testOpen(t, dir, nil), sid, im)
	})
	t.Run("v2", func(t *testing.T) {
		dir, r := newEncryptedRepo(t)
		r.Close()
		setVersion(t, dir, 3, 2)
		r = testOpen(t, dir, func(o *Options) { o.Password = []byte(testPassword) })
		if r.PatchesEnabled() || r.Config().Version != 2 || !r.Encrypted() {
			t.Fatalf("v2: patches enabled %v, version %d", r.PatchesEnabled(), r.Config().Version)
		}
		sid := backupImage(t, r, "v2", im, time.Now())
		verifyImage(t, r, sid, im)
	})
	t.Run("plain v2 refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "repo")
		testInit(t, dir)
		setVersion(t, dir, 3, 2)
		if _, err := Open(context.Background(), local.New(dir), Options{}); !errors.Is(err, ErrCorrupt) ||
			!strings.Contains(err.Error(), "version 2 repositories are encrypted") {
			t.Fatalf("plain version 2 config: %v", err)
		}
	})
}
