package vmjob

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// maxConfigFile bounds one config file: .vmx/.vmsd/.vmxf are a few KiB, .nvram some hundred KiB.
const maxConfigFile = 16 << 20

// stageConfig copies a VM's config files into a fresh folder under tempDir. It runs before our
// VM snapshot, which repoints the .vmx at delta disks: the backup keeps the .vmx as the VM had it.
func stageConfig(files []string, tempDir string) (string, []string, error) {
	dir, err := os.MkdirTemp(tempDir, "snapferry-vmconfig-")
	if err != nil {
		return "", nil, fmt.Errorf("stage config files: %w", err)
	}
	var staged []string
	for _, f := range files {
		dst := filepath.Join(dir, filepath.Base(f))
		if err := copyFile(f, dst); err != nil {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("stage config file %s: %w", f, err)
		}
		staged = append(staged, dst)
	}
	return dir, staged, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if st.Size() > maxConfigFile {
		return fmt.Errorf("%d bytes is too large for a VM config file", st.Size())
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, st.ModTime(), st.ModTime())
}

// saveConfigTree stores files as one flat tree (file name -> content), one blob per file, so `ls`
// shows the VM's files by their names and restore finds them without any folder path.
func saveConfigTree(ctx context.Context, bs repo.BlobStore, files []string) (repo.ID, repo.Stats, error) {
	var st repo.Stats
	t := &repo.Tree{}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return repo.ID{}, st, fmt.Errorf("store config file %s: %w", f, err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return repo.ID{}, st, fmt.Errorf("store config file %s: %w", f, err)
		}
		n := repo.Node{Name: filepath.Base(f), Type: repo.NodeFile, Mode: uint32(fi.Mode().Perm()), Size: uint64(len(b)), ModTime: fi.ModTime()}
		if len(b) > 0 {
			id := bs.BlobID(b)
			added, err := bs.SaveBlob(ctx, repo.DataBlob, id, b)
			if err != nil {
				return repo.ID{}, st, fmt.Errorf("store config file %s: %w", f, err)
			}
			countBlob(&st, added, len(b))
			n.Content = []repo.ID{id}
		}
		st.BytesRead += int64(len(b))
		st.FilesNew++
		t.Nodes = append(t.Nodes, n)
	}
	b, err := t.Marshal()
	if err != nil {
		return repo.ID{}, st, fmt.Errorf("store config tree: %w", err)
	}
	id := bs.BlobID(b)
	added, err := bs.SaveBlob(ctx, repo.TreeBlob, id, b)
	if err != nil {
		return repo.ID{}, st, fmt.Errorf("store config tree: %w", err)
	}
	countBlob(&st, added, len(b))
	return id, st, nil
}

func countBlob(st *repo.Stats, added bool, n int) {
	if added {
		st.BlobsNew++
		st.BytesAdded += int64(n)
	} else {
		st.BlobsReused++
	}
}

// configFile is a config file loaded from a snapshot.
type configFile struct {
	Name string
	Mode os.FileMode
	Data []byte
}

// loadConfigTree reads the config files of a VM snapshot. Names must be plain file names: a
// crafted snapshot cannot make restore write elsewhere.
func loadConfigTree(ctx context.Context, bs repo.BlobStore, id repo.ID) ([]configFile, error) {
	b, err := bs.LoadBlob(ctx, repo.TreeBlob, id, nil)
	if err != nil {
		return nil, fmt.Errorf("load VM config tree %s: %w", id.Short(), err)
	}
	t, err := repo.UnmarshalTree(b)
	if err != nil {
		return nil, fmt.Errorf("load VM config tree %s: %w", id.Short(), err)
	}
	var out []configFile
	for _, n := range t.Nodes {
		if n.Type != repo.NodeFile || n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			return nil, fmt.Errorf("load VM config tree %s: entry %q is not a plain file name (damaged or crafted snapshot)", id.Short(), n.Name)
		}
		var data []byte
		for _, c := range n.Content {
			part, err := bs.LoadBlob(ctx, repo.DataBlob, c, nil)
			if err != nil {
				return nil, fmt.Errorf("load VM config file %s: %w", n.Name, err)
			}
			data = append(data, part...)
		}
		out = append(out, configFile{Name: n.Name, Mode: os.FileMode(n.Mode).Perm(), Data: data})
	}
	return out, nil
}
