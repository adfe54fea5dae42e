package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// DefaultURI is the connection used when neither --libvirt-uri nor SNAPFERRY_LIBVIRT_URI says.
const DefaultURI = "qemu:///system"

// The sockets a local system daemon listens on: the monolithic libvirtd, or the modular
// virtqemud of newer installs.
var defaultSockets = []string{"/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"}

// Endpoint is a parsed libvirt URI: the local socket to dial and the URI to open there.
type Endpoint struct {
	Socket string
	URI    golibvirt.ConnectURI
}

// ParseURI understands local QEMU URIs: qemu:///system and qemu+unix:///system, with an
// optional ?socket=PATH. Remote transports (qemu+ssh://, qemu+tcp://) are refused: snapferry
// runs on the host it backs up.
func ParseURI(s string) (Endpoint, error) {
	if s == "" {
		s = DefaultURI
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("libvirt URI %q: %w", s, err)
	}
	switch u.Scheme {
	case "qemu", "qemu+unix":
	default:
		return Endpoint{}, fmt.Errorf("libvirt URI %q: only local qemu:///system (or qemu+unix:///system?socket=PATH) is supported; run snapferry on the KVM host itself", s)
	}
	if u.Host != "" {
		return Endpoint{}, fmt.Errorf("libvirt URI %q names a remote host; run snapferry on that host (--host=root@%s) instead", s, u.Host)
	}
	var ep Endpoint
	switch u.Path {
	case "/system":
		ep.URI = golibvirt.QEMUSystem
	case "/session":
		ep.URI = golibvirt.QEMUSession
	default:
		return Endpoint{}, fmt.Errorf("libvirt URI %q: want /system or /session", s)
	}
	ep.Socket = u.Query().Get("socket")
	if ep.Socket == "" {
		if ep.URI == golibvirt.QEMUSession {
			return Endpoint{}, fmt.Errorf("libvirt URI %q: give the session daemon's socket (?socket=PATH)", s)
		}
		ep.Socket = defaultSockets[0]
		for _, p := range defaultSockets {
			if _, err := os.Stat(p); err == nil {
				ep.Socket = p
				break
			}
		}
	}
	return ep, nil
}

// Open connects to the libvirt daemon of uri ("" for DefaultURI).
func Open(ctx context.Context, uri string) (*Driver, error) {
	ep, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(ep.Socket), dialers.WithLocalTimeout(timeout)))
	if err := l.ConnectToURI(ep.URI); err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s: %w (is libvirtd running? --libvirt-uri or SNAPFERRY_LIBVIRT_URI pick another socket)", ep.Socket, err)
	}
	return &Driver{l: l, uri: uri}, nil
}

// Hypervisor is the kind of host snapferry runs on.
type Hypervisor string

// The host kinds --hypervisor accepts.
const (
	ESXi    Hypervisor = "esxi"
	Libvirt Hypervisor = "libvirt"
)

// Detect tells which hypervisor this host is: ESXi when vim-cmd is on PATH, libvirt when the
// libvirt socket of uri answers. forced ("esxi", "libvirt", from --hypervisor) wins.
func Detect(ctx context.Context, forced, uri string) (Hypervisor, error) {
	switch strings.ToLower(forced) {
	case "esxi":
		return ESXi, nil
	case "libvirt", "kvm":
		return Libvirt, nil
	case "":
	default:
		return "", fmt.Errorf("--hypervisor=%q: want esxi or libvirt", forced)
	}
	if _, err := exec.LookPath("vim-cmd"); err == nil {
		return ESXi, nil
	}
	d, err := Open(ctx, uri)
	if err == nil {
		d.Close()
		return Libvirt, nil
	}
	return "", errors.Join(errors.New("no hypervisor found on this host: vim-cmd is not on PATH (not ESXi) and no libvirt daemon answers; give --hypervisor=esxi|libvirt"), err)
}
