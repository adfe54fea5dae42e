package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// FormatVersion is the newest repository format this build reads and writes. Version 2 added
// encryption (keys/, sealed blobs and files, keyed ids) and is always encrypted; version 1 is
// always unencrypted. Version 3 means "may contain patch blobs" (docs/repository-format.md,
// "Patch blobs") and is either: the config's encryption field tells. Init writes version 3, so
// an older build meets a repository that may hold patches with the "upgrade snapferry" message
// instead of misreading one; version 1 and 2 repositories stay as they are and are read as
// before (no patches are written to them).
const (
	FormatVersion          = 3
	formatVersionPlain     = 1
	formatVersionEncrypted = 2
	formatVersionPatches   = 3
)

// Defaults chosen at init.
const (
	DefaultBlockSize = 1 << 20
	DefaultPackSize  = 32 << 20
	DefaultChunkMin  = 256 << 10
	DefaultChunkAvg  = 1 << 20
	DefaultChunkMax  = 4 << 20
	// MaxBlobSize bounds one blob so a damaged header cannot make a reader allocate gigabytes.
	MaxBlobSize = 64 << 20
)

// Config is the repository's "config" file (JSON). It is written once by Init and never changed.
type Config struct {
	Version   int           `json:"version"`
	ID        string        `json:"id"`
	BlockSize int           `json:"block_size"`
	PackSize  int64         `json:"pack_size"` // target size of new packs
	Chunker   ChunkerParams `json:"chunker"`
	// Compression is the writers' default: "zstd" (auto), "fast", "max" or "off". Blobs record
	// their own codec, so this only chooses what new blobs get.
	Compression string    `json:"compression"`
	Encryption  string    `json:"encryption"` // EncryptionNone or EncryptionXChaCha
	Created     time.Time `json:"created"`
}

// ChunkerParams are the content-defined chunking sizes for file contents (images/tree uses them).
type ChunkerParams struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// InitOptions choose the parameters of a new repository; zero fields take the defaults.
type InitOptions struct {
	BlockSize int
	PackSize  int64
	Chunker   ChunkerParams
	Clock     Clock
	// Password, if not empty, makes an encrypted repository: a random master key is stored in
	// keys/, sealed under a key derived from the password with KDF (zero: the defaults).
	Password []byte
	KDF      KDFParams
	// Compression is the writers' default for the new repository (empty: auto).
	Compression Compression
}

// Init creates a new repository on be and writes its config. It fails (wrapping store.ErrExist)
// if be already holds a repository.
func Init(ctx context.Context, be store.Backend, o InitOptions) (*Config, error) {
	cfg := Config{
		Version:     formatVersionPatches,
		BlockSize:   o.BlockSize,
		PackSize:    o.PackSize,
		Chunker:     o.Chunker,
		Compression: o.Compression.configWord(),
		Encryption:  "none",
		Created:     clockOr(o.Clock).Now().UTC(),
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.PackSize == 0 {
		cfg.PackSize = DefaultPackSize
	}
	if cfg.Chunker == (ChunkerParams{}) {
		cfg.Chunker = ChunkerParams{Min: DefaultChunkMin, Avg: DefaultChunkAvg, Max: DefaultChunkMax}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("init repository %s: %w", be.Location(), err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("init repository %s: random id: %w", be.Location(), err)
	}
	cfg.ID = hex.EncodeToString(id[:])
	var keyFile []byte
	if len(o.Password) > 0 {
		cfg.Encryption = EncryptionXChaCha
		mk, err := newMasterKey(cfg.ID)
		if err != nil {
			return nil, fmt.Errorf("init repository %s: %w", be.Location(), err)
		}
		if keyFile, err = sealMasterKey(mk, o.Password, o.KDF, cfg.Created); err != nil {
			return nil, fmt.Errorf("init repository %s: %w", be.Location(), err)
		}
	}
	if err := be.Create(ctx); err != nil {
		if errors.Is(err, store.ErrExist) {
			return nil, err // the backend said in one line what it found there
		}
		return nil, fmt.Errorf("init repository %s: %w", be.Location(), err)
	}
	// The key goes first: the config is what makes a folder a repository, and an encrypted one
	// without a key file could never be opened.
	if keyFile != nil {
		if _, err := saveFile(ctx, be, store.KindKeys, keyFile, nil); err != nil {
			return nil, fmt.Errorf("init repository %s: save key: %w", be.Location(), err)
		}
	}
	b, err := json.MarshalIndent(&cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("init repository %s: encode config: %w", be.Location(), err)
	}
	if err := be.Save(ctx, store.Handle{Kind: store.KindConfig}, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("init repository %s: save config: %w", be.Location(), err)
	}
	return &cfg, nil
}

func (c *Config) validate() error {
	switch {
	case c.BlockSize < 4096 || c.BlockSize > MaxBlobSize || c.BlockSize&(c.BlockSize-1) != 0:
		return fmt.Errorf("block size %d: want a power of two from 4 KiB to 64 MiB", c.BlockSize)
	case c.PackSize < 1024 || c.PackSize > 1<<30:
		return fmt.Errorf("pack size %d: want 1 KiB to 1 GiB", c.PackSize)
	case c.Chunker.Min <= 0 || c.Chunker.Min > c.Chunker.Avg || c.Chunker.Avg > c.Chunker.Max ||
		c.Chunker.Max > MaxBlobSize:
		return fmt.Errorf("chunker sizes %+v: want 0 < min <= avg <= max <= 64 MiB", c.Chunker)
	case !validConfigCompression(c.Compression):
		return fmt.Errorf("compression %q: want zstd, fast, max or off", c.Compression)
	case c.Version == formatVersionPlain && c.Encryption != EncryptionNone:
		return fmt.Errorf("encryption %q in a version 1 config: version 1 repositories are unencrypted", c.Encryption)
	case c.Version == formatVersionEncrypted && c.Encryption == EncryptionNone:
		return fmt.Errorf("encryption %q in a version 2 config: version 2 repositories are encrypted", c.Encryption)
	case c.Encryption != EncryptionNone && c.Encryption != EncryptionXChaCha:
		return fmt.Errorf("encryption %q: want %q or %q", c.Encryption, EncryptionNone, EncryptionXChaCha)
	}
	return nil
}

// LoadConfig reads and checks the config of the repository on be.
func LoadConfig(ctx context.Context, be store.Backend) (*Config, error) {
	rd, err := be.Load(ctx, store.Handle{Kind: store.KindConfig}, 0, 0)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: no config file (run `snapferry init` first?): %w",
			be.Location(), ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: load config: %w", be.Location(), err)
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("open repository %s: read config: %w", be.Location(), err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("open repository %s: config is not snapferry JSON (%v): %w",
			be.Location(), err, ErrNotRepository)
	}
	if cfg.Version > FormatVersion {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), &FormatError{Version: cfg.Version})
	}
	if cfg.Version < 1 {
		return nil, fmt.Errorf("open repository %s: config has no format version: %w", be.Location(), ErrNotRepository)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open repository %s: config: %w: %w", be.Location(), err, ErrCorrupt)
	}
	return &cfg, nil
}

// PatchesEnabled reports whether the repository's format (3 or newer) allows patch blobs.
func (r *Repository) PatchesEnabled() bool { return r.cfg.Version >= formatVersionPatches }

func clockOr(c Clock) Clock {
	if c == nil {
		return SystemClock{}
	}
	return c
}

// validConfigCompression: "auto" is written as "zstd" (older readers know only that word).
func validConfigCompression(s string) bool {
	c, err := ParseCompression(s)
	return err == nil && c != "" && s == c.configWord()
}

// DefaultCompression is what writers do when a run does not choose.
func (c *Config) DefaultCompression() Compression {
	if m, err := ParseCompression(c.Compression); err == nil && m != "" {
		return m
	}
	return CompressionAuto
}
