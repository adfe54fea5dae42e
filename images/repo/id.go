package repo

import (
	"encoding/hex"
	"fmt"
)

// ID names a blob, pack, index or snapshot: 32 bytes, BLAKE3-256 of the plaintext content for
// unencrypted repositories (a keyed hash once encryption lands, so ids come from BlobStore.BlobID).
type ID [32]byte

// String is the lowercase hex form used in file names and manifests.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the 8-digit prefix shown to users.
func (id ID) Short() string { return id.String()[:8] }

// IsZero reports the all-zero id, used as "no block" (a hole) in block maps.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText/UnmarshalText make IDs hex strings in JSON manifests.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a full 64-digit hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("parse id %q: want 64 hex digits, got %d", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse id %q: %w", s, err)
	}
	return id, nil
}
