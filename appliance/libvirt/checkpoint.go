package libvirt

import (
	"fmt"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// CheckpointPrefix starts the name of every checkpoint snapferry creates; no other checkpoint
// is ever deleted.
const CheckpointPrefix = "snapferry-"

// chainPrefix names the checkpoints of one chain (one repository).
func chainPrefix(chain string) string { return CheckpointPrefix + chain + "-" }

// checkpointName is the checkpoint a backup job creates.
func checkpointName(chain, jobID string) string { return chainPrefix(chain) + jobID }

// chainCheckpoints lists the domain's checkpoints of the chain, by name.
func (d *Driver) chainCheckpoints(dom golibvirt.Domain, chain string) ([]string, error) {
	cps, _, err := d.l.DomainListAllCheckpoints(dom, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", dom.Name, err)
	}
	var out []string
	for _, cp := range cps {
		if strings.HasPrefix(cp.Name, chainPrefix(chain)) {
			out = append(out, cp.Name)
		}
	}
	return out, nil
}

// checkpointDisks reads which disks of a checkpoint have a bitmap, and their sizes then.
// ok=false when the checkpoint does not exist.
func (d *Driver) checkpointDisks(dom golibvirt.Domain, name string) (map[string]uint64, bool, error) {
	cp, err := d.l.DomainCheckpointLookupByName(dom, name, 0)
	if err != nil {
		if isCode(err, golibvirt.ErrNoDomainCheckpoint) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("look up checkpoint %s of %s: %w", name, dom.Name, err)
	}
	// Flag 4 (VIR_DOMAIN_CHECKPOINT_XML_SIZE) adds each disk's size at checkpoint time; it
	// needs a running domain, so fall back to the plain XML.
	doc, err := d.l.DomainCheckpointGetXMLDesc(cp, 4)
	if err != nil {
		if doc, err = d.l.DomainCheckpointGetXMLDesc(cp, 0); err != nil {
			return nil, false, fmt.Errorf("read checkpoint %s of %s: %w", name, dom.Name, err)
		}
	}
	x, err := parseXML(doc)
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint %s of %s: %w", name, dom.Name, err)
	}
	out := map[string]uint64{}
	for _, dk := range x.child("disks").childrenSafe("disk") {
		if dk.attr("checkpoint") == "bitmap" {
			size, _ := strconv.ParseUint(dk.attr("size"), 10, 64)
			out[dk.attr("name")] = size
		}
	}
	return out, true, nil
}

// deleteCheckpoint removes one of our checkpoints; libvirt merges its bitmap into its parent's,
// so other chains' checkpoints still see every change. A checkpoint already gone is fine.
func (d *Driver) deleteCheckpoint(dom golibvirt.Domain, name string) error {
	if !strings.HasPrefix(name, CheckpointPrefix) {
		return fmt.Errorf("refusing to delete checkpoint %s of %s: not snapferry's", name, dom.Name)
	}
	cp, err := d.l.DomainCheckpointLookupByName(dom, name, 0)
	if err != nil {
		if isCode(err, golibvirt.ErrNoDomainCheckpoint) {
			return nil
		}
		return fmt.Errorf("look up checkpoint %s of %s: %w", name, dom.Name, err)
	}
	if err := d.l.DomainCheckpointDelete(cp, 0); err != nil {
		return fmt.Errorf("delete checkpoint %s of %s: %w", name, dom.Name, err)
	}
	return nil
}
