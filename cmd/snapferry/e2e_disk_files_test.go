package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// guestDiskImage makes a GPT disk image with an ext4 partition (p2, made by mke2fs -d from a
// tree) after a small empty one, the way a Linux VM's disk looks. It returns the image and the
// source tree.
func guestDiskImage(t *testing.T, dir string) (string, string) {
	t.Helper()
	for _, tool := range []string{"mke2fs", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (CI installs it)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	src := filepath.Join(dir, "guest")
	files := map[string]string{
		"etc/hostname":                  "web01\n",
		"etc/nginx/sites [prod]/a.conf": "server { listen 80; }\n",
		"home/jürgen/Übersicht (1).txt": strings.Repeat("Grüße ", 5000),
	}
	for i := range 300 {
		files[fmt.Sprintf("var/many/f%03d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	mtime := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for p, c := range files {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(full, mtime, mtime)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	os.WriteFile(filepath.Join(src, "var/big.bin"), big, 0o600)
	os.Symlink("../etc/hostname", filepath.Join(src, "home/link"))
	fsImg := filepath.Join(dir, "fs.img")
	mustRun(t, nil, "truncate", "-s", "48M", fsImg)
	mustRun(t, nil, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-d", src, fsImg)
	img := filepath.Join(dir, "disk.img")
	mustRun(t, nil, "truncate", "-s", "64M", img)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: gpt\nsize=4M, type=uefi\nsize=48M, type=linux\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var j struct {
		Partitiontable struct{ Partitions []struct{ Start int64 } }
	}
	out, _ := exec.Command("sfdisk", "-J", img).Output()
	if err := json.Unmarshal(out, &j); err != nil || len(j.Partitiontable.Partitions) != 2 {
		t.Fatalf("sfdisk -J: %v %s", err, out)
	}
	mustRun(t, nil, "dd", "if="+fsImg, "of="+img, "bs=512", fmt.Sprintf("seek=%d", j.Partitiontable.Partitions[1].Start), "conv=notrunc,sparse", "status=none")
	return img, src
}

// TestFilesFromInsideDisk backs up a disk image and lists and restores files from inside its
// ext4 partition over a local, an ssh:// and an sftp:// repository, comparing byte for byte.
func TestFilesFromInsideDisk(t *testing.T) {
	base := t.TempDir()
	img, src := guestDiskImage(t, base)
	s := sshtest.Start(t, sshtest.Options{})
	for _, scheme := range []string{"local", "ssh", "sftp"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "state")
			spec := filepath.Join(dir, "repo")
			var ssh []string
			if scheme != "local" {
				spec = s.Spec(scheme, spec)
				ssh = s.Flags()
			}
			mustSF(t, home, 0, append([]string{"init", spec}, ssh...)...)
			mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, ssh...)...)
			ref := "latest:" + img
			parts := mustSF(t, home, 0, append([]string{"ls", ref, "--repo", spec}, ssh...)...).stdout
			if !strings.Contains(parts, "p1") || !strings.Contains(parts, "EFI System") ||
				!strings.Contains(parts, "p2") || !strings.Contains(parts, "ext4") || !strings.Contains(parts, "label=root") {
				t.Fatalf("partition list:\n%s", parts)
			}
			l := mustSF(t, home, 0, append([]string{"ls", ref + "/p2/home", "-l", "--repo", spec}, ssh...)...).stdout
			if !strings.Contains(l, "link -> ../etc/hostname") || !strings.Contains(l, "jürgen") {
				t.Fatalf("ls -l of p2/home:\n%s", l)
			}
			js := mustSF(t, home, 0, append([]string{"ls", ref + "/p2/etc/hostname", "--json", "--repo", spec}, ssh...)...).stdout
			var compact bytes.Buffer // one document, pretty-printed (docs/json.md)
			if err := json.Compact(&compact, []byte(js)); err == nil {
				js = compact.String()
			}
			if !strings.Contains(js, `"size":6`) || !strings.Contains(js, `"type":"file"`) {
				t.Fatalf("ls --json:\n%s", js)
			}
			out := filepath.Join(dir, "out")
			mustSF(t, home, 0, append([]string{"restore", ref + "/p2/home", "--from", spec, "--target", out}, ssh...)...)
			mustSF(t, home, 0, append([]string{"restore", ref + "/p2/var", "--from", spec, "--target", out}, ssh...)...)
			mustSF(t, home, 0, append([]string{"restore", ref + "/p2/etc/nginx/sites [prod]/a.conf", "--from", spec, "--target", out}, ssh...)...)
			for _, p := range []string{"home/jürgen/Übersicht (1).txt", "var/big.bin", "var/many/f123.txt"} {
				want, _ := os.ReadFile(filepath.Join(src, p))
				got, err := os.ReadFile(filepath.Join(out, p))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s restored differs (%v)", p, err)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(out, "a.conf")); string(got) != "server { listen 80; }\n" {
				t.Fatalf("a.conf = %q", got)
			}
			fi, err := os.Stat(filepath.Join(out, "home/jürgen/Übersicht (1).txt"))
			if err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)) {
				t.Fatalf("restored mode/time: %v %v", fi, err)
			}
			if tgt, err := os.Readlink(filepath.Join(out, "home/link")); err != nil || tgt != "../etc/hostname" {
				t.Fatalf("symlink: %q %v", tgt, err)
			}
			// An existing different file is never replaced without --overwrite: kept, listed,
			// exit 3 (docs/restore.md).
			os.WriteFile(filepath.Join(out, "a.conf"), []byte("mine"), 0o644)
			r := sf(t, home, append([]string{"restore", ref + "/p2/etc/nginx/sites [prod]/a.conf", "--from", spec, "--target", out}, ssh...)...)
			if r.code != exitcode.Partial || !strings.Contains(r.stderr, "--overwrite") || !strings.Contains(r.stderr, filepath.Join(out, "a.conf")) {
				t.Fatalf("restore over a different file: exit %d\n%s", r.code, r.stderr)
			}
			if got, _ := os.ReadFile(filepath.Join(out, "a.conf")); string(got) != "mine" {
				t.Fatal("a.conf was replaced without --overwrite")
			}
			mustSF(t, home, 0, append([]string{"restore", ref + "/p2/etc/nginx/sites [prod]/a.conf", "--from", spec, "--target", out, "--overwrite"}, ssh...)...)
			// The EFI partition holds no file system: refused with what to do instead.
			r = sf(t, home, append([]string{"ls", ref + "/p1/x", "--repo", spec}, ssh...)...)
			if r.code == 0 || !strings.Contains(r.stderr, "restore the whole disk") {
				t.Fatalf("ls inside an empty partition: exit %d\n%s", r.code, r.stderr)
			}
		})
	}
}
