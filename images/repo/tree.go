package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	gojson "github.com/goccy/go-json"
)

// Node types in a Tree.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
	NodeDev     = "dev"     // block device
	NodeCharDev = "chardev" // character device
	NodeFifo    = "fifo"
	NodeSocket  = "socket"
)

// Tree is one directory's listing, stored as a JSON TreeBlob. Nodes are sorted by name so equal
// directories encode to equal bytes and deduplicate.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is one directory entry with the metadata restore needs.
type Node struct {
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Mode       uint32    `json:"mode"` // os.FileMode bits
	Size       uint64    `json:"size,omitempty"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	ModTime    time.Time `json:"mtime"`
	AccessTime time.Time `json:"atime,omitempty"`
	ChangeTime time.Time `json:"ctime,omitempty"`
	Inode      uint64    `json:"inode,omitempty"`
	DeviceID   uint64    `json:"device_id,omitempty"` // st_dev: with Inode, identifies hard links
	Links      uint64    `json:"links,omitempty"`
	Rdev       uint64    `json:"rdev,omitempty"`
	LinkTarget string    `json:"link_target,omitempty"`
	Content    []ID      `json:"content,omitempty"` // data blobs of a file, in order
	Subtree    *ID       `json:"subtree,omitempty"` // tree blob of a directory
	// Error records why a file could not be read during backup (the snapshot is partial).
	Error string `json:"error,omitempty"`
}

// Sort puts the nodes in name order, the order Marshal stores them in.
func (t *Tree) Sort() {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
}

// Marshal sorts the nodes and encodes the tree: the bytes of json.Marshal(t), built one node
// at a time. encoding/json keeps the scratch buffer of each Marshal call in a pool, grown to the
// largest value it encoded; whole trees of big directories, encoded by several workers at once,
// left 12 MiB of such buffers live during a /usr/share backup. Per node they stay small.
func (t *Tree) Marshal() ([]byte, error) {
	t.Sort()
	if t.Nodes == nil {
		return []byte(`{"nodes":null}`), nil
	}
	out := append(make([]byte, 0, 64+384*len(t.Nodes)), `{"nodes":[`...) // a node of a file is ~330 bytes
	for i := range t.Nodes {
		b, err := json.Marshal(&t.Nodes[i])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, "]}"...), nil
}

// UnmarshalTree decodes a tree blob.
//
// Decoding uses github.com/goccy/go-json: a nothing-changed file-tree backup decodes every parent
// tree, and encoding/json was 40% of that run's CPU; goccy decodes the same structs, tags and
// TextUnmarshalers about 2x faster. Encoding stays with encoding/json, so the stored bytes (and
// tree ids, which deduplication depends on) never change with a library update.
// goccy is laxer with input our encoder never writes (it skips unknown fields without checking
// their syntax, matches keys by exact case): a crafted tree may be read differently than
// encoding/json would, which a crafted tree could arrange anyway; checking with json.Valid first
// cost as much as the decoding. FuzzUnmarshalTree checks it never panics and that both agree on
// every tree our encoder writes.
//
// A tree in the frame Marshal writes is decoded node by node into a slice sized once (see
// unmarshalNodes); anything else, and any tree a node of which does not decode, goes to one
// gojson.Unmarshal of the whole, which gives the error.
func UnmarshalTree(b []byte) (*Tree, error) {
	if t, ok := unmarshalNodes(b); ok {
		return t, nil
	}
	var t Tree
	if err := gojson.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	return &t, nil
}

const (
	treeHead = `{"nodes":[`
	treeTail = "]}"
	nodeHead = `{"name":`
)

// unmarshalNodes decodes a tree written by Marshal, {"nodes":[NODE,NODE,...]} without spaces,
// one node at a time into a slice allocated once at its size. goccy decodes a whole array into
// a pooled scratch slice that doubles as it goes, then copies it out and keeps the scratch: the
// 18 000 nodes of /usr/share/man/man1 cost 7 MiB of scratch beside the 4 MiB result, 5.9 MiB of
// input copy and the decompressed input, at once (~25 MiB while backing up or restoring that
// folder, measured). Node by node, goccy's copy of the input is one node's. ok is false for
// anything in another shape or a node that does not decode (the caller decodes the whole then).
func unmarshalNodes(b []byte) (*Tree, bool) {
	if !bytes.HasPrefix(b, []byte(treeHead)) || !bytes.HasSuffix(b, []byte(treeTail)) || len(b) < len(treeHead)+len(treeTail) {
		return nil, false
	}
	body := b[len(treeHead) : len(b)-len(treeTail)]
	// Every node Marshal writes starts with nodeHead, which cannot appear inside a JSON string
	// (its quotes would be escaped): the count is exact for our trees and only a hint for others,
	// bounded by the input's size.
	n := min(bytes.Count(body, []byte(nodeHead)), len(body)/len(nodeHead))
	t := &Tree{Nodes: make([]Node, 0, n)}
	for len(body) > 0 {
		end := objectEnd(body)
		if end < 0 {
			return nil, false
		}
		t.Nodes = append(t.Nodes, Node{}) // decoded in place: a Node of its own would escape
		if err := gojson.Unmarshal(body[:end], &t.Nodes[len(t.Nodes)-1]); err != nil {
			return nil, false
		}
		body = body[end:]
		if len(body) > 0 {
			if body[0] != ',' || len(body) == 1 {
				return nil, false
			}
			body = body[1:]
		}
	}
	return t, true
}

// objectEnd returns the length of the JSON object at the start of b (through its closing
// brace), or -1 when b does not start with one that closes. Brackets inside strings are skipped;
// whether the object is valid JSON is left to the decoder.
func objectEnd(b []byte) int {
	if len(b) == 0 || b[0] != '{' {
		return -1
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return -1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
