package repo

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/snapferry/snapferry/images/blobhash"
	"github.com/snapferry/snapferry/images/store"
)

// Encryption modes recorded in the config.
const (
	EncryptionNone = "none"
	// EncryptionXChaCha seals blobs and manifests with XChaCha20-Poly1305 and names blobs by
	// keyed BLAKE3 (docs/security.md).
	EncryptionXChaCha = "xchacha20-poly1305"
)

// Flags that mark sealed content. Readers check them against the config both ways: a plaintext
// blob in an encrypted repository is as suspicious as a sealed one in a plain repository.
const (
	blobFlagSealed uint16 = 1 // pack/index entry: stored bytes are nonce|ciphertext|tag
	packFlagSealed byte   = 1 // pack header: the header itself is one sealed envelope
	// sealOverhead is what an envelope adds: a 24-byte random nonce and a 16-byte tag. Random
	// nonces are safe with XChaCha's 192 bits, so no counter has to survive crashes or be shared
	// between hosts writing to one repository.
	sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

// Associated data binds an envelope to its role, so a sealed snapshot cannot be served as an
// index file or a pack header, and (for blobs, whose associated data is the id) one blob's bytes
// cannot stand in for another's.
const (
	adPackHeader = "snapferry pack header"
	adKeyFile    = "snapferry key"
)

func fileAD(k store.Kind) []byte { return []byte("snapferry " + string(k)) }

// cryptor holds an open repository's keys. A nil *cryptor is the unencrypted mode: seal copies,
// open copies, ids are plain BLAKE3. Every method is safe for concurrent use.
type cryptor struct {
	aead  cipher.AEAD
	idKey []byte // 32 bytes, the BLAKE3 key for blob ids
}

func newCryptor(mk *masterKey) (*cryptor, error) {
	if len(mk.Encrypt) != chacha20poly1305.KeySize || len(mk.IDKey) != 32 {
		return nil, fmt.Errorf("master key has %d/%d bytes, want 32/32: %w", len(mk.Encrypt), len(mk.IDKey), ErrCorrupt)
	}
	aead, err := chacha20poly1305.NewX(mk.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &cryptor{aead: aead, idKey: slices.Clone(mk.IDKey)}, nil
}

// overhead is how many bytes sealing adds.
func (c *cryptor) overhead() int {
	if c == nil {
		return 0
	}
	return sealOverhead
}

// blobID is the id of a plaintext blob: keyed BLAKE3 when encrypted, so a store host cannot
// confirm that a repository holds a known file by hashing it. It is computed on the caller's
// goroutine (blobhash): the callers are a backup's workers, one or two per core already.
func (c *cryptor) blobID(data []byte) ID {
	if c == nil {
		return blobhash.Sum256(data)
	}
	return blobhash.SumKeyed256(c.idKey, data)
}

// seal appends the envelope nonce|ciphertext|tag of plain to dst. plain must not overlap dst's
// spare capacity.
func (c *cryptor) seal(dst, plain, ad []byte) []byte {
	if c == nil {
		return append(dst, plain...)
	}
	n := len(dst)
	dst = slices.Grow(dst, sealOverhead+len(plain))[:n+chacha20poly1305.NonceSizeX]
	// crypto/rand.Read never returns an error (it aborts the program if the system's source
	// fails), so a nonce is never zero by accident.
	_, _ = rand.Read(dst[n:])
	return c.aead.Seal(dst, dst[n:], plain, ad)
}

// open appends the plaintext of an envelope to dst. A failure means the bytes were changed, come
// from another repository, or were sealed for another role; it matches ErrCorrupt.
func (c *cryptor) open(dst, sealed, ad []byte) ([]byte, error) {
	if c == nil {
		return append(dst, sealed...), nil
	}
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("envelope of %d bytes is too short: %w", len(sealed), ErrCorrupt)
	}
	nonce := sealed[:chacha20poly1305.NonceSizeX]
	out, err := c.aead.Open(dst, nonce, sealed[chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, fmt.Errorf("decrypt: authentication failed (bytes changed, or not sealed with this repository's key): %w", ErrCorrupt)
	}
	return out, nil
}

// checkSealed compares an entry's sealed flag with the repository's mode.
func (c *cryptor) checkSealed(flags uint16) error {
	switch sealed := flags&blobFlagSealed != 0; {
	case sealed && c == nil:
		return fmt.Errorf("blob is encrypted but the repository is not: %w", ErrCorrupt)
	case !sealed && c != nil:
		return fmt.Errorf("blob is not encrypted but the repository is (planted plaintext?): %w", ErrCorrupt)
	}
	return nil
}
