package libvirt

import (
	"context"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/images/repo"
)

// domainXMLFile is the name of the domain definition in a snapshot's tree.
const domainXMLFile = "domain.xml"

// saveDomainXML stores the domain definition as a one-file tree, so `ls` shows it and restore
// finds it by name.
func saveDomainXML(ctx context.Context, bs repo.BlobStore, doc string, mtime time.Time) (repo.ID, repo.Stats, error) {
	var st repo.Stats
	b := []byte(doc)
	id := bs.BlobID(b)
	added, err := bs.SaveBlob(ctx, repo.DataBlob, id, b)
	if err != nil {
		return repo.ID{}, st, fmt.Errorf("store domain XML: %w", err)
	}
	if added {
		st.BlobsNew, st.BytesAdded = 1, int64(len(b))
	}
	t := &repo.Tree{Nodes: []repo.Node{{Name: domainXMLFile, Type: repo.NodeFile, Mode: 0o600, Size: uint64(len(b)), ModTime: mtime, Content: []repo.ID{id}}}}
	data, err := t.Marshal()
	if err != nil {
		return repo.ID{}, st, err
	}
	tid := bs.BlobID(data)
	if _, err := bs.SaveBlob(ctx, repo.TreeBlob, tid, data); err != nil {
		return repo.ID{}, st, fmt.Errorf("store domain XML tree: %w", err)
	}
	return tid, st, nil
}

// loadDomainXML reads the domain definition back from a snapshot.
func loadDomainXML(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot) (string, error) {
	if sn.Tree == nil {
		return "", fmt.Errorf("snapshot of %s holds no domain XML", sn.Source)
	}
	data, err := bs.LoadBlob(ctx, repo.TreeBlob, *sn.Tree, nil)
	if err != nil {
		return "", fmt.Errorf("load the snapshot's tree: %w", err)
	}
	t, err := repo.UnmarshalTree(data)
	if err != nil {
		return "", err
	}
	for _, n := range t.Nodes {
		if n.Name != domainXMLFile {
			continue
		}
		if n.Size > maxDomainXML {
			return "", fmt.Errorf("domain XML of %d bytes is too large", n.Size)
		}
		var out []byte
		for _, id := range n.Content {
			b, err := bs.LoadBlob(ctx, repo.DataBlob, id, nil)
			if err != nil {
				return "", fmt.Errorf("load domain XML: %w", err)
			}
			out = append(out, b...)
		}
		return string(out), nil
	}
	return "", fmt.Errorf("snapshot of %s holds no %s: not a libvirt domain backup", sn.Source, domainXMLFile)
}
