package libvirt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// xnode is one element of an XML document kept whole: libvirt's domain, backup and checkpoint
// XML are edited in place (a restore changes a few elements) and written back with everything
// else untouched, namespaced metadata (qemu:commandline) included. It replaces libvirtxml's
// full schema structs, which cost ~0.7 MB of binary for the handful of elements used here.
type xnode struct {
	name  string // as written, prefix included ("qemu:arg")
	attrs []xml.Attr
	kids  []any // *xnode, xml.CharData or xml.Comment
}

// maxXMLDepth bounds nesting, so a crafted document cannot exhaust the stack.
const maxXMLDepth = 64

func rawName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// parseXML reads a document's root element (RawToken: prefixes are kept as written).
func parseXML(doc string) (*xnode, error) {
	if len(doc) > maxDomainXML {
		return nil, fmt.Errorf("XML of %d bytes is too large", len(doc))
	}
	d := xml.NewDecoder(strings.NewReader(doc))
	var stack []*xnode
	var root *xnode
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, errors.New("parse XML: nested too deeply")
			}
			n := &xnode{name: rawName(t.Name), attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("parse XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != rawName(t.Name) {
				return nil, fmt.Errorf("parse XML: unexpected </%s>", rawName(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, t.Copy())
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, errors.New("parse XML: text outside the root element")
			}
		case xml.Comment:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, t.Copy())
			}
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, errors.New("parse XML: no complete root element")
	}
	return root, nil
}

// String writes the element and everything under it.
func (n *xnode) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *xnode) write(b *strings.Builder) {
	b.WriteString("<" + n.name)
	for _, a := range n.attrs {
		b.WriteString(" " + rawName(a.Name) + `="`)
		_ = xml.EscapeText(b, []byte(a.Value))
		b.WriteString(`"`)
	}
	if len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	for _, k := range n.kids {
		switch k := k.(type) {
		case *xnode:
			k.write(b)
		case xml.CharData:
			_ = xml.EscapeText(b, k)
		case xml.Comment:
			b.WriteString("<!--" + strings.ReplaceAll(string(k), "--", "- -") + "-->")
		}
	}
	b.WriteString("</" + n.name + ">")
}

// children are the child elements named name.
func (n *xnode) children(name string) []*xnode {
	var out []*xnode
	for _, k := range n.kids {
		if c, ok := k.(*xnode); ok && c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// childrenSafe is children on a node that may be nil (none then).
func (n *xnode) childrenSafe(name string) []*xnode {
	if n == nil {
		return nil
	}
	return n.children(name)
}

// child is the first child element named name, or nil.
func (n *xnode) child(name string) *xnode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if c, ok := k.(*xnode); ok && c.name == name {
			return c
		}
	}
	return nil
}

// ensure returns the child named name, appending an empty one when there is none.
func (n *xnode) ensure(name string) *xnode {
	if c := n.child(name); c != nil {
		return c
	}
	c := &xnode{name: name}
	n.kids = append(n.kids, c)
	return c
}

// remove drops the child elements for which drop is true.
func (n *xnode) remove(drop func(*xnode) bool) {
	kept := n.kids[:0]
	for _, k := range n.kids {
		if c, ok := k.(*xnode); ok && drop(c) {
			continue
		}
		kept = append(kept, k)
	}
	n.kids = kept
}

// attr is an attribute's value ("" when absent); safe on a nil node.
func (n *xnode) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if rawName(a.Name) == name {
			return a.Value
		}
	}
	return ""
}

// setAttr sets (or adds) an attribute.
func (n *xnode) setAttr(name, value string) {
	for i, a := range n.attrs {
		if rawName(a.Name) == name {
			n.attrs[i].Value = value
			return
		}
	}
	n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: name}, Value: value})
}

// delAttr removes an attribute.
func (n *xnode) delAttr(name string) {
	kept := n.attrs[:0]
	for _, a := range n.attrs {
		if rawName(a.Name) != name {
			kept = append(kept, a)
		}
	}
	n.attrs = kept
}

// text is the element's character data.
func (n *xnode) text() string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for _, k := range n.kids {
		if c, ok := k.(xml.CharData); ok {
			b.Write(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// setText replaces the element's content with text.
func (n *xnode) setText(s string) { n.kids = []any{xml.CharData(s)} }

// el builds an element with attributes given as name, value pairs and child elements.
func el(name string, attrs []string, kids ...*xnode) *xnode {
	n := &xnode{name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		n.setAttr(attrs[i], attrs[i+1])
	}
	for _, k := range kids {
		n.kids = append(n.kids, k)
	}
	return n
}
