package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/snapferry/snapferry/cron/executable"
)

// DefaultDir is where binaries go on the remote host, relative to the login directory.
const DefaultDir = ".snapferry/bin"

// Options for Ensure.
type Options struct {
	Version     string // this binary's version; names the remote file (required unless RemotePath)
	RemotePath  string // exact remote path of the binary (--remote-path); "": DefaultDir/snapferry-VERSION
	LocalBinary string // the file to deploy; "": this executable (cron/executable)
}

// Result says where the binary is and whether it had to be uploaded.
type Result struct {
	Path     string // absolute remote path, ready to run
	Uploaded bool
}

// Ensure puts the local binary on the host behind conn unless an identical one is there.
func Ensure(ctx context.Context, conn *ssh.Client, opts Options) (Result, error) {
	local := opts.LocalBinary
	if local == "" {
		p, err := executable.Path()
		if err != nil {
			return Result{}, err
		}
		local = p
	}
	sum, size, err := fileSum(local)
	if err != nil {
		return Result{}, fmt.Errorf("deploy: %w", err)
	}
	sc, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		return Result{}, fmt.Errorf("deploy: start sftp on the remote host (needed to upload snapferry; "+
			"or install it there and pass --remote-path): %w", err)
	}
	defer sc.Close()
	final, err := remotePath(sc, opts, sum)
	if err != nil {
		return Result{}, err
	}
	if fi, err := sc.Stat(final); err == nil && fi.Size() == size {
		if opts.RemotePath == "" {
			// The default name carries the checksum, and a file only ever gets that name
			// after its upload was verified: no need to read 20 MB back on every run (a
			// remote sha256sum took seconds on a busy NAS).
			return Result{Path: final}, nil
		}
		remote, err := remoteSum(ctx, conn, sc, final)
		if err != nil {
			return Result{}, fmt.Errorf("deploy: checksum of %s: %w", final, err)
		}
		if remote == sum {
			return Result{Path: final}, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("deploy: stat %s: %w", final, err)
	}
	if err := checkArch(ctx, conn, local); err != nil {
		return Result{}, err
	}
	if err := upload(ctx, conn, sc, local, final, sum); err != nil {
		return Result{}, err
	}
	if opts.RemotePath == "" {
		removeOlderBuilds(sc, final, opts.Version)
	}
	return Result{Path: final, Uploaded: true}, nil
}

// removeOlderBuilds deletes other builds of the same version next to final (a development
// version string names many builds, each under its checksum). A process still running one keeps
// its inode; a failure only leaves a file behind, so it is not reported.
func removeOlderBuilds(sc *sftp.Client, final, version string) {
	dir := path.Dir(final)
	entries, err := sc.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "snapferry-" + version + "-"
	for _, e := range entries {
		name := e.Name()
		if name != path.Base(final) && strings.HasPrefix(name, prefix) && len(name) == len(prefix)+16 && e.Mode().IsRegular() {
			_ = sc.Remove(path.Join(dir, name))
		}
	}
}

func remotePath(sc *sftp.Client, opts Options, sum string) (string, error) {
	p := opts.RemotePath
	if p == "" {
		var err error
		if p, err = defaultName(opts.Version, sum); err != nil {
			return "", err
		}
	}
	if strings.HasPrefix(p, "~/") {
		p = p[2:] // SFTP paths without a leading slash are below the login directory already
	}
	if !path.IsAbs(p) {
		home, err := sc.Getwd()
		if err != nil {
			return "", fmt.Errorf("deploy: remote login directory: %w", err)
		}
		p = path.Join(home, p)
	}
	return p, nil
}

// defaultName is where Ensure puts a binary of version with checksum sum, relative to the login
// folder.
func defaultName(version, sum string) (string, error) {
	if version == "" || strings.ContainsAny(version, "/\\ \t\n'\"") {
		return "", fmt.Errorf("deploy: version %q cannot name a remote file; pass --remote-path", version)
	}
	return path.Join(DefaultDir, "snapferry-"+version+"-"+sum[:min(len(sum), 16)]), nil
}

// Expected is where Ensure puts the local binary by default, relative to the login folder (where
// a remote command starts), found without asking the host: a caller may run it there at once
// and call Ensure only when that fails, which saves the SFTP check's round trips on every run
// after the first. A file only ever gets this name after its upload was verified (Ensure), and
// the name carries the binary's checksum.
func Expected(opts Options) (string, error) {
	local := opts.LocalBinary
	if local == "" {
		p, err := executable.Path()
		if err != nil {
			return "", err
		}
		local = p
	}
	sum, _, err := fileSum(local)
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	return defaultName(opts.Version, sum)
}

func upload(ctx context.Context, conn *ssh.Client, sc *sftp.Client, local, final, sum string) error {
	dir := path.Dir(final)
	if err := sc.MkdirAll(dir); err != nil {
		return fmt.Errorf("deploy: create %s on the remote host: %w", dir, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, ".upload-"+path.Base(final)+"-"+hex.EncodeToString(rnd[:]))
	src, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("deploy: open %s: %w", local, err)
	}
	defer src.Close()
	dst, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("deploy: create %s on the remote host: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = sc.Remove(tmp)
		}
	}()
	if _, err := dst.ReadFrom(src); err != nil {
		dst.Close()
		return fmt.Errorf("deploy: upload %s to %s: %w", local, tmp, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("deploy: close %s: %w", tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	got, err := remoteSum(ctx, conn, sc, tmp)
	if err != nil {
		return fmt.Errorf("deploy: checksum of uploaded %s: %w", tmp, err)
	}
	if got != sum {
		return fmt.Errorf("deploy: uploaded %s has SHA-256 %s, want %s (corrupted in transit or by the remote disk)", tmp, got, sum)
	}
	if err := sc.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("deploy: chmod 755 %s: %w", tmp, err)
	}
	if _, has := sc.HasExtension("posix-rename@openssh.com"); has {
		err = sc.PosixRename(tmp, final)
	} else {
		// Plain SFTP rename refuses to replace: remove the old version first.
		if rmErr := sc.Remove(final); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return fmt.Errorf("deploy: replace %s: %w", final, rmErr)
		}
		err = sc.Rename(tmp, final)
	}
	if err != nil {
		return fmt.Errorf("deploy: rename %s to %s: %w", tmp, final, err)
	}
	ok = true
	return nil
}

// remoteSum returns the hex SHA-256 of a remote file: by sha256sum on the host, or by reading it.
func remoteSum(ctx context.Context, conn *ssh.Client, sc *sftp.Client, p string) (string, error) {
	out, err := output(ctx, conn, "sha256sum "+shellQuote(p))
	if err == nil {
		if f := strings.Fields(out); len(f) > 0 && len(f[0]) == 64 {
			return f[0], nil
		}
	}
	f, err := sc.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return "", fmt.Errorf("read back %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func output(ctx context.Context, conn *ssh.Client, cmd string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	sess, err := conn.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	var out bytes.Buffer
	sess.Stdout = &out
	err = sess.Run(cmd)
	return out.String(), err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fileSum(p string) (sum string, size int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("open local binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read local binary %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkArch refuses to upload an ELF binary for another CPU than the host's. Files that are not
// ELF, and hosts without uname, are not checked.
func checkArch(ctx context.Context, conn *ssh.Client, local string) error {
	f, err := elf.Open(local)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := map[elf.Machine]string{elf.EM_X86_64: "x86_64", elf.EM_AARCH64: "aarch64", elf.EM_386: "i686"}[f.Machine]
	if want == "" {
		return nil
	}
	out, err := output(ctx, conn, "uname -m")
	if err != nil {
		return nil
	}
	have := strings.TrimSpace(out)
	if have == "arm64" {
		have = "aarch64"
	}
	if want == "i686" && strings.HasSuffix(have, "86") {
		return nil
	}
	if have != "" && have != want {
		return fmt.Errorf("deploy: %s is built for %s but the remote host is %s; "+
			"copy the %s build of snapferry there and pass --remote-path", local, want, have, have)
	}
	return nil
}

// Locate returns the remote snapferry to run: installed (--remote-path) as it is, without
// looking at the host, since behind a forced-command key nothing else can run there; else the
// binary Ensure put in place.
func Locate(ctx context.Context, conn *ssh.Client, installed string, opts Options) (string, error) {
	if installed != "" {
		return installed, nil
	}
	res, err := Ensure(ctx, conn, opts)
	if err != nil {
		return "", err
	}
	return res.Path, nil
}
