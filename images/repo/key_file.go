package repo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/snapferry/snapferry/images/store"
)

// KDFParams are the scrypt parameters a key file records. The zero value means the defaults:
// N=2^15, r=8, p=1, which needs 128·N·r = 32 MiB and about 0.1 s on a current x86 core. ESXi
// gives a user-world process a small memory pool next to the VMs, and every backup opens the
// repository once, so the cost is kept to what a brute-force attacker still pays per guess
// (32 MiB of memory-hard work) without competing with the backup for memory. argon2id at 64 MiB
// would double that for a similar gain; scrypt is what restic also uses, so the parameters are
// well understood.
type KDFParams struct {
	N int `json:"n"`
	R int `json:"r"`
	P int `json:"p"`
}

// Default scrypt parameters (see KDFParams).
const (
	DefaultKDFN = 1 << 15
	DefaultKDFR = 8
	DefaultKDFP = 1
	// maxKDFMemory bounds what a key file may ask of the reader (4× the default): a key file
	// planted by a compromised store must not push a backup past the ESXi memory pool (the
	// binary's soft memory limit is 256 MiB).
	maxKDFMemory = 128 << 20
)

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		return KDFParams{N: DefaultKDFN, R: DefaultKDFR, P: DefaultKDFP}
	}
	return p
}

func (p KDFParams) validate() error {
	if p.N < 2 || p.N&(p.N-1) != 0 || p.R < 1 || p.P < 1 || p.P > 16 ||
		int64(128)*int64(p.N)*int64(p.R)*int64(p.P) > maxKDFMemory {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d: want N a power of two, r>=1, 1<=p<=16, at most %d MiB of work memory",
			p.N, p.R, p.P, maxKDFMemory>>20)
	}
	return nil
}

// masterKey is the random secret of an encrypted repository. Every key file holds it, sealed
// under a key derived from one password.
type masterKey struct {
	Repository string `json:"repository"` // config id: a key file cannot be moved to another repository
	Encrypt    []byte `json:"encrypt"`    // XChaCha20-Poly1305 key for blobs and files
	IDKey      []byte `json:"id_key"`     // BLAKE3 key for blob ids
}

func newMasterKey(repoID string) (*masterKey, error) {
	mk := &masterKey{Repository: repoID, Encrypt: make([]byte, 32), IDKey: make([]byte, 32)}
	if _, err := rand.Read(mk.Encrypt); err != nil {
		return nil, fmt.Errorf("random master key: %w", err)
	}
	if _, err := rand.Read(mk.IDKey); err != nil {
		return nil, fmt.Errorf("random master key: %w", err)
	}
	return mk, nil
}

// keyFile is the JSON of keys/<id> (id = BLAKE3 of the file). Only Data is secret, and it is
// sealed; the rest is shown by `snapferry key list`.
type keyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	User    string    `json:"user,omitempty"`
	KDF     string    `json:"kdf"` // "scrypt"
	KDFParams
	Salt []byte `json:"salt"` // 32 random bytes
	Data []byte `json:"data"` // masterKey JSON sealed with XChaCha20-Poly1305 under scrypt(password, salt)
}

const keyFileVersion = 1

// sealMasterKey makes a key file for password.
func sealMasterKey(mk *masterKey, password []byte, p KDFParams, now time.Time) ([]byte, error) {
	p = p.orDefault()
	if err := p.validate(); err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("new key: empty password: %w", ErrNoPassword)
	}
	kf := keyFile{Version: keyFileVersion, Created: now.UTC(), KDF: "scrypt", KDFParams: p, Salt: make([]byte, 32)}
	kf.Host, _ = os.Hostname()
	kf.User = os.Getenv("USER")
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, fmt.Errorf("new key: random salt: %w", err)
	}
	c, err := kf.cryptor(password)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(mk)
	if err != nil {
		return nil, fmt.Errorf("new key: encode: %w", err)
	}
	kf.Data = c.seal(nil, plain, []byte(adKeyFile))
	clear(plain)
	return json.MarshalIndent(&kf, "", "  ")
}

func (kf *keyFile) cryptor(password []byte) (*cryptor, error) {
	k, err := scrypt.Key(password, kf.Salt, kf.N, kf.R, kf.P, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return &cryptor{aead: aead}, nil
}

// decodeKeyFile parses a key file without opening it.
func decodeKeyFile(b []byte) (*keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("decode key file: %v: %w", err, ErrCorrupt)
	}
	if kf.Version != keyFileVersion || kf.KDF != "scrypt" {
		return nil, fmt.Errorf("key file version %d, kdf %q: want version %d, scrypt: %w", kf.Version, kf.KDF, keyFileVersion, ErrCorrupt)
	}
	if err := kf.KDFParams.validate(); err != nil {
		return nil, fmt.Errorf("key file: %w: %w", err, ErrCorrupt)
	}
	if len(kf.Salt) < 16 || len(kf.Data) < sealOverhead {
		return nil, fmt.Errorf("key file: salt or sealed key missing: %w", ErrCorrupt)
	}
	return &kf, nil
}

// unseal opens the master key with password. A wrong password and a tampered file look the
// same to an AEAD; both are reported as ErrWrongPassword by the caller when no key file opens.
func (kf *keyFile) unseal(password []byte, repoID string) (*masterKey, error) {
	c, err := kf.cryptor(password)
	if err != nil {
		return nil, err
	}
	plain, err := c.open(nil, kf.Data, []byte(adKeyFile))
	if err != nil {
		return nil, ErrWrongPassword
	}
	defer clear(plain)
	var mk masterKey
	if err := json.Unmarshal(plain, &mk); err != nil {
		return nil, fmt.Errorf("key file: sealed key does not decode: %w", ErrCorrupt)
	}
	if mk.Repository != repoID {
		return nil, fmt.Errorf("key file belongs to repository %q, not %q: %w", mk.Repository, repoID, ErrCorrupt)
	}
	return &mk, nil
}

// openMasterKey tries every key file with password. It reads key files one at a time and stops
// at the first that opens, so a repository with several keys costs one scrypt per key tried.
func openMasterKey(ctx context.Context, be store.Backend, cfg *Config, password []byte) (*masterKey, ID, error) {
	if len(password) == 0 {
		return nil, ID{}, fmt.Errorf("open repository %s: it is encrypted; give its password in SNAPFERRY_PASSWORD_FILE, "+
			"--password-file or SNAPFERRY_PASSWORD: %w", be.Location(), ErrNoPassword)
	}
	files, err := listFiles(ctx, be, store.KindKeys)
	if err != nil {
		return nil, ID{}, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	if len(files) == 0 {
		return nil, ID{}, fmt.Errorf("open repository %s: encrypted, but keys/ holds no key file: %w", be.Location(), ErrCorrupt)
	}
	var damaged []string
	for _, f := range files {
		b, err := loadFile(ctx, be, store.Handle{Kind: store.KindKeys, Name: f.ID.String()}, nil)
		var kf *keyFile
		if err == nil {
			kf, err = decodeKeyFile(b)
		}
		if err != nil {
			damaged = append(damaged, fmt.Sprintf("%s: %v", f.ID.Short(), err))
			continue
		}
		mk, err := kf.unseal(password, cfg.ID)
		if errors.Is(err, ErrWrongPassword) {
			continue
		}
		if err != nil {
			damaged = append(damaged, fmt.Sprintf("%s: %v", f.ID.Short(), err))
			continue
		}
		return mk, f.ID, nil
	}
	// Never echo the password: the message names only the repository and the key files tried.
	msg := fmt.Sprintf("open repository %s: no key file opens with the given password (%d tried)", be.Location(), len(files))
	if len(damaged) > 0 {
		msg += fmt.Sprintf("; damaged key files: %v", damaged)
	}
	return nil, ID{}, fmt.Errorf("%s: %w", msg, ErrWrongPassword)
}

// openKeys returns the cryptor of an encrypted repository (nil for an unencrypted one), with
// the master key and the key file that opened it.
func openKeys(ctx context.Context, be store.Backend, cfg *Config, password []byte) (*cryptor, *masterKey, ID, error) {
	if cfg.Encryption == EncryptionNone {
		if len(password) > 0 {
			return nil, nil, ID{}, fmt.Errorf("open repository %s: a password was given but its config says it is not encrypted; "+
				"refusing in case the config was replaced to make this host write plaintext (unset the password for an unencrypted repository)",
				be.Location())
		}
		return nil, nil, ID{}, nil
	}
	mk, id, err := openMasterKey(ctx, be, cfg, password)
	if err != nil {
		return nil, nil, ID{}, err
	}
	c, err := newCryptor(mk)
	if err != nil {
		return nil, nil, ID{}, fmt.Errorf("open repository %s: key file %s: %w", be.Location(), id.Short(), err)
	}
	return c, mk, id, nil
}
