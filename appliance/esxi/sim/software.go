package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/snapferry/snapferry/appliance/esxi/vib"
)

// The package side of esxcli: software acceptance get/set, software vib install/list/remove,
// system settings encryption get. shared/esxi-reference shows none of these outputs; they follow
// what public threads quote of real hosts ("Installation Result" blocks, "Host acceptance level
// changed to 'CommunitySupported'.", the [AcceptanceLevelError] and [NoMatchError] texts). The
// wording of [VibSignatureError], [AcceptanceConfigError] (Secure Boot), [VibFormatError], the
// `vib list` column widths and the `encryption get` block is invented in the same style
// (docs/esxi.md lists these).

// acceptanceLevels in increasing trust, as esxcli names them.
var acceptanceLevels = []string{"CommunitySupported", "PartnerSupported", "VMwareAccepted", "VMwareCertified"}

func (c *hostConfig) acceptance() string {
	if c.Acceptance == "" {
		return "PartnerSupported"
	}
	return c.Acceptance
}

// esxcliError is an esxcli failure: its text goes to stderr as is, exit status 1.
type esxcliError string

func (e esxcliError) Error() string { return string(e) }

func errBlock(kind string, lines ...string) esxcliError {
	var b strings.Builder
	b.WriteString("[" + kind + "]\n")
	for _, l := range lines {
		b.WriteString(" " + l + "\n")
	}
	b.WriteString(" Please refer to the log file for more details.\n")
	return esxcliError(b.String())
}

func (h *Host) esxcliSoftware(args []string, stdout, stderr io.Writer) int {
	var out strings.Builder
	opts, pos := esxcliOptions(args)
	cmd := strings.Join(pos, " ")
	err := h.do(func(s *session) error {
		switch cmd {
		case "software acceptance get":
			out.WriteString(s.st.Config.acceptance() + "\n")
			return nil
		case "software acceptance set":
			return s.acceptanceSet(opts["level"], &out)
		case "software vib install":
			return s.vibInstall(opts, &out)
		case "software vib list":
			s.vibList(&out)
			return nil
		case "software vib remove":
			return s.vibRemove(opts, &out)
		case "system settings encryption get":
			c := &s.st.Config
			mode := "NONE"
			if c.RequireSecureBoot || c.ExecInstalledOnly {
				mode = "TPM"
			}
			fmt.Fprintf(&out, "   Mode: %s\n   Require Executables Only From Installed VIBs: %t\n   Require Secure Boot: %t\n",
				mode, c.ExecInstalledOnly, c.RequireSecureBoot)
			return nil
		}
		return esxcliError(fmt.Sprintf("Error: Unknown command or namespace %s\n", cmd))
	})
	if err != nil {
		var e esxcliError
		if errors.As(err, &e) {
			fmt.Fprint(stderr, string(e))
		} else {
			fmt.Fprintln(stderr, "esxisim: esxcli:", err)
		}
		return 1
	}
	fmt.Fprint(stdout, out.String())
	return 0
}

// esxcliOptions splits esxcli arguments into options (long names; -v, -n, -d, -f as their long
// forms) and the namespace words.
func esxcliOptions(args []string) (map[string]string, []string) {
	short := map[string]string{"v": "viburl", "n": "vibname", "d": "depot", "f": "force"}
	opts := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if l, ok := short[name]; ok {
			name = l
		}
		switch name {
		case "no-sig-check", "force", "dry-run", "no-live-install":
			opts[name] = "true"
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		opts[name] = val
	}
	return opts, pos
}

func (s *session) acceptanceSet(level string, out *strings.Builder) error {
	if !slices.Contains(acceptanceLevels, level) {
		return esxcliError(fmt.Sprintf("Error: Invalid option --level: %q; want one of %s\n", level, strings.Join(acceptanceLevels, ", ")))
	}
	if level == "CommunitySupported" && s.st.Config.SecureBoot {
		return errBlock("AcceptanceConfigError", "Secure Boot enabled: Cannot change acceptance level to community.")
	}
	s.st.Config.Acceptance = level
	fmt.Fprintf(out, "Host acceptance level changed to '%s'.\n", level)
	return nil
}

func (s *session) vibInstall(opts map[string]string, out *strings.Builder) error {
	p := opts["viburl"]
	if p == "" {
		return esxcliError("Error: Missing required parameter -v|--viburl or -d|--depot\n")
	}
	local := p
	if strings.HasPrefix(p, VMFSPrefix) {
		var err error
		if local, err = s.h.local(p); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return errBlock("VibDownloadError", fmt.Sprintf("('%s', '', \"[Errno 2] No such file or directory: '%s'\")", p, p))
	}
	v, err := vib.Read(b)
	if err != nil {
		return errBlock("VibFormatError", fmt.Sprintf("Error in parsing VIB %s: %v", p, err))
	}
	d := v.Descriptor
	if opts["no-sig-check"] == "" {
		return errBlock("VibSignatureError", fmt.Sprintf("VIB %s: Could not find a trusted signer (unsigned VIB; --no-sig-check installs it).", d.ID()))
	}
	level := vib.HostLevel(d.AcceptanceLevel)
	host := s.st.Config.acceptance()
	if slices.Index(acceptanceLevels, level) < slices.Index(acceptanceLevels, host) {
		return errBlock("AcceptanceLevelError",
			fmt.Sprintf("VIB %s's acceptance level is %s, which is not compliant with the ImageProfile acceptance level %s",
				d.ID(), d.AcceptanceLevel, descriptorLevel(host)),
			"To change the host acceptance level, use the 'esxcli software acceptance set' command.")
	}
	var installed, removed, skipped []string
	i := slices.IndexFunc(s.st.VIBs, func(x installedVIB) bool { return x.Name == d.Name })
	if i >= 0 && s.st.VIBs[i].Version == d.Version {
		skipped = append(skipped, d.ID())
	} else {
		files := slices.Clone(d.Files)
		nv := installedVIB{ID: d.ID(), Name: d.Name, Version: d.Version, Vendor: d.Vendor, Acceptance: level,
			InstallDate: s.h.now().Format("2006-01-02"), Files: files}
		if i >= 0 {
			removed = append(removed, s.st.VIBs[i].ID)
			s.st.VIBs[i] = nv
		} else {
			s.st.VIBs = append(s.st.VIBs, nv)
		}
		installed = append(installed, d.ID())
	}
	msg := "Operation finished successfully."
	if len(installed) == 0 {
		msg = "Host is not changed."
	}
	writeResult(out, "Installation Result", msg, installed, removed, skipped)
	return nil
}

// descriptorLevel is the inverse of vib.HostLevel: "PartnerSupported" -> "partner".
func descriptorLevel(host string) string {
	for _, l := range []string{vib.AcceptanceCommunity, vib.AcceptancePartner, vib.AcceptanceAccepted, vib.AcceptanceCertified} {
		if vib.HostLevel(l) == host {
			return l
		}
	}
	return host
}

func (s *session) vibRemove(opts map[string]string, out *strings.Builder) error {
	name := opts["vibname"]
	i := slices.IndexFunc(s.st.VIBs, func(x installedVIB) bool { return x.Name == name || x.ID == name })
	if i < 0 {
		return errBlock("NoMatchError", fmt.Sprintf("No VIB matching VIB search specification '%s'.", name))
	}
	id := s.st.VIBs[i].ID
	s.st.VIBs = slices.Delete(s.st.VIBs, i, i+1)
	writeResult(out, "Removal Result", "Operation finished successfully.", nil, []string{id}, nil)
	return nil
}

// writeResult prints the result block as real hosts do, including the blank after an empty list.
func writeResult(out *strings.Builder, title, msg string, installed, removed, skipped []string) {
	fmt.Fprintf(out, "%s\n   Message: %s\n   Reboot Required: false\n", title, msg)
	fmt.Fprintf(out, "   VIBs Installed: %s\n   VIBs Removed: %s\n   VIBs Skipped: %s\n",
		strings.Join(installed, ", "), strings.Join(removed, ", "), strings.Join(skipped, ", "))
}

// vibList prints a column table like `esxcli storage filesystem list`: each column as wide as
// its longest value or header, two blanks between, dashes under the header.
func (s *session) vibList(out *strings.Builder) {
	header := []string{"Name", "Version", "Vendor", "Acceptance Level", "Install Date"}
	rows := [][]string{header}
	for _, v := range s.st.VIBs {
		rows = append(rows, []string{v.Name, v.Version, v.Vendor, v.Acceptance, v.InstallDate})
	}
	w := make([]int, len(header))
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], len(c))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				out.WriteString("  ")
			}
			if i == len(cells)-1 {
				out.WriteString(c)
			} else {
				fmt.Fprintf(out, "%-*s", w[i], c)
			}
		}
		out.WriteString("\n")
	}
	line(header)
	dashes := make([]string, len(w))
	for i := range w {
		dashes[i] = strings.Repeat("-", w[i])
	}
	line(dashes)
	for _, r := range rows[1:] {
		line(r)
	}
}

// SetSecurity sets the host's Secure Boot state and its TPM-enforced settings.
func (h *Host) SetSecurity(secureBoot, requireSecureBoot, execInstalledOnly bool) error {
	return h.do(func(s *session) error {
		c := &s.st.Config
		c.SecureBoot, c.RequireSecureBoot, c.ExecInstalledOnly = secureBoot, requireSecureBoot, execInstalledOnly
		if secureBoot && c.acceptance() == "CommunitySupported" {
			c.Acceptance = "PartnerSupported" // a Secure Boot host cannot be at community level
		}
		return nil
	})
}
