package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/transfer/storespec"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/device"
	"github.com/snapferry/snapferry/transfer/tape/tapewire"
)

// tapeFlags are the tape options of backup and restore (and, in part, of `tape`).
type tapeFlags struct {
	pool     string
	changer  string
	streams  int
	tapeHome string
}

// addTapeFlags registers the options backup needs for tape:// targets.
func addTapeFlags(fs *pflag.FlagSet) *tapeFlags {
	tf := addTapeAccessFlags(fs)
	fs.StringVar(&tf.pool, "pool", "", "tape: the media pool to write to (env SNAPFERRY_TAPE_POOL; default \"default\")")
	fs.IntVar(&tf.streams, "streams", 1, "tape: back up this many sources at once, multiplexed onto one tape file")
	return tf
}

// addTapeAccessFlags registers the options every command that reads a tape:// spec needs.
func addTapeAccessFlags(fs *pflag.FlagSet) *tapeFlags {
	tf := &tapeFlags{}
	fs.StringVar(&tf.changer, "changer", "", "tape: command the tape host runs to load another volume (gets SNAPFERRY_TAPE_* variables)")
	fs.StringVar(&tf.tapeHome, "tape-home", "", "tape: state folder on the tape host, where its catalog lives (default: ~/.snapferry of the SSH user there)")
	return tf
}

func (tf *tapeFlags) poolName() string {
	switch {
	case tf.pool != "":
		return tf.pool
	case os.Getenv("SNAPFERRY_TAPE_POOL") != "":
		return os.Getenv("SNAPFERRY_TAPE_POOL")
	}
	return "default"
}

// parseTapeSpec accepts tape://[user@]host[:port]/DEV, tape:///DEV and, for the `tape` command
// run on the tape host, a bare device or file path.
func parseTapeSpec(raw string) (storespec.Spec, error) {
	if !strings.Contains(raw, "://") {
		if raw == "" {
			return storespec.Spec{}, usagef("no tape given: pass a device (/dev/nst0), a virtual tape file, or tape://host/dev/nst0")
		}
		return storespec.Spec{Scheme: storespec.Tape, Path: raw}, nil
	}
	s, err := storespec.Parse(raw)
	if err != nil {
		return s, asUsage(err)
	}
	if s.Scheme != storespec.Tape {
		return s, usagef("%s is not a tape; use tape://[user@]host[:port]/dev/nst0 or tape:///dev/nst0", raw)
	}
	return s, nil
}

// tapeHome is the state folder that holds this host's tape catalog and drive sockets: --home or
// SNAPFERRY_HOME when given, else $HOME/.snapferry. Not the folder beside the binary, as other
// state is: the serve that a client deployed into ~/.snapferry/bin and the snapferry the operator
// runs `tape list` with must find the same catalog.
func (a *app) tapeHome() (string, error) {
	if a.home != "" || os.Getenv("SNAPFERRY_HOME") != "" {
		return a.stateDir()
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("tape state folder: set --home or SNAPFERRY_HOME: %w", err)
	}
	dir := filepath.Join(h, ".snapferry")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create tape state folder %s: %w", dir, err)
	}
	return dir, nil
}

// tapeDrive is this host's drive at path with the catalog in the tape state folder. Without a
// changer command an operator at a terminal is asked to swap tapes; otherwise a full tape or a
// missing volume is an error that says what to load.
func (a *app) tapeDrive(path, changer string, interactive bool) (*tape.Drive, error) {
	dir, err := a.tapeHome()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	d := &tape.Drive{Path: path, Catalog: tape.NewCatalogFile(dir), Host: host, Log: a.stderr}
	switch {
	case changer != "":
		d.Changer = tape.HookChanger(changer, a.stderr)
	case interactive && term.IsTerminal(int(os.Stdin.Fd())):
		d.Changer = tape.PromptChanger(os.Stdin, a.stderr)
	}
	return d, nil
}

// openTapeLibrary opens the drive of a tape spec: here, or on a tape host over SSH.
func (a *app) openTapeLibrary(raw string, tf *tapeFlags) (tape.Library, error) {
	s, err := parseTapeSpec(raw)
	if err != nil {
		return nil, err
	}
	if !s.Remote() {
		d, err := a.tapeDrive(s.Path, tf.changer, true)
		if err != nil {
			return nil, err
		}
		return &tape.Local{Drive: d, Ctx: a.ctx}, nil
	}
	o := tapewire.DialOptions{Home: tf.tapeHome, Changer: tf.changer, Store: storespec.Options{
		KnownHosts: a.ssh.KnownHosts, AcceptNewHostKey: a.ssh.AcceptNewHostKey, RemotePath: a.ssh.RemotePath,
		Version: version, ServeLog: a.stderr}}
	if a.ssh.Identity != "" {
		o.Store.Identity = []string{a.ssh.Identity}
	}
	lib, err := tapewire.Dial(a.ctx, raw, o)
	if errors.Is(err, storespec.ErrBadSpec) {
		return nil, asUsage(err)
	}
	return lib, err
}

// newTapeCmd is `snapferry tape label|scan|list|status`, run on the tape host (list also over SSH).
func newTapeCmd(a *app) *cobra.Command {
	return groupCmd("tape COMMAND", "tape drives on this host: label, scan, list, status",
		"Tape labels and scans volumes in this host's drives and lists the tape catalog: the save sets\n"+
			"that `backup --to=tape://...` wrote (docs/tape.md).",
		newTapeLabelCmd(a), newTapeScanCmd(a), newTapeListCmd(a), newTapeStatusCmd(a))
}

// tapeDevice returns the DEVICE argument (or $SNAPFERRY_TAPE) of a tape subcommand.
func tapeDevice(pos []string, optional bool) (string, error) {
	switch {
	case len(pos) == 1:
		return pos[0], nil
	case len(pos) > 1:
		return "", usagef("give one tape device, got %q", pos)
	case os.Getenv("SNAPFERRY_TAPE") != "" || optional:
		return os.Getenv("SNAPFERRY_TAPE"), nil
	}
	return "", usagef("no tape given: pass a device (/dev/nst0) or a virtual tape file, or set SNAPFERRY_TAPE")
}

// hostDrive opens the drive a `tape` subcommand names (DEVICE or $SNAPFERRY_TAPE); it must be
// on this host: label and scan run on the tape host.
func (a *app) hostDrive(pos []string, sub string) (*tape.Drive, error) {
	raw, err := tapeDevice(pos, false)
	if err != nil {
		return nil, err
	}
	s, err := parseTapeSpec(raw)
	if err != nil {
		return nil, err
	}
	if s.Remote() {
		return nil, usagef("tape %s runs on the tape host: ssh to %s and run `snapferry tape %s %s` there", sub, s.Host, sub, s.Path)
	}
	return a.tapeDrive(s.Path, "", false)
}

func newTapeLabelCmd(a *app) *cobra.Command {
	var o tape.LabelOptions
	var blockSize, capacity string
	c := &cobra.Command{
		Use:   "label [DEVICE] [--pool=P] [--volume=ID]",
		Short: "write a new volume label (run on the tape host)",
		Long: "Label writes a new volume label on the tape in DEVICE (or $SNAPFERRY_TAPE): a drive (/dev/nst0)\n" +
			"or a virtual tape file. A tape that has a label is only erased with --force.",
		Example: "  snapferry tape label /dev/nst0 --pool=weekly\n  snapferry tape label /srv/tapes/vt1 --capacity=100M",
		Args:    maxArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.tapeLabel(args, o, blockSize, capacity)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.Pool, "pool", "default", "media pool of the new volume")
	fs.StringVar(&o.Volume, "volume", "", "volume id (default: a new SFxxxxxxxx id; write it on the cartridge)")
	fs.IntVar(&o.Sequence, "sequence", 0, "sequence number in the pool (default: the next one)")
	fs.StringVar(&blockSize, "block-size", "256K", "record size of the volume")
	fs.StringVar(&capacity, "capacity", "0", "virtual tapes: size of a new tape file, e.g. 100M (0: unlimited)")
	fs.BoolVar(&o.Force, "force", false, "erase a tape that already has a label (its save sets are lost)")
	return c
}

func (a *app) tapeLabel(pos []string, o tape.LabelOptions, blockSize, capacity string) error {
	d, err := a.hostDrive(pos, "label")
	if err != nil {
		return err
	}
	bs, err := parseSize(blockSize)
	if err != nil {
		return usagef("--block-size: %v", err)
	}
	o.BlockSize = int(bs)
	if d.Capacity, err = parseSize(capacity); err != nil {
		return usagef("--capacity: %v", err)
	}
	l, err := d.Label(a.ctx, o)
	if errors.Is(err, tape.ErrLabeled) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(l)
	} else {
		fmt.Fprintf(a.stdout, "labeled %s as volume %s (pool %s, sequence %d, %s records)\n", d.Path, l.Volume, l.Pool, l.Sequence, humanBytes(int64(l.BlockSize)))
	}
	return nil
}

func newTapeScanCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "scan [DEVICE]",
		Short: "read the loaded volume and rebuild the catalog from it (run on the tape host)",
		Long: "Scan reads the volume in DEVICE (or $SNAPFERRY_TAPE) from start to end and adds what it finds to\n" +
			"the tape catalog; damaged records are listed and make the run partial (exit 3).",
		Example: "  snapferry tape scan /dev/nst0",
		Args:    maxArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.tapeScan(args) },
	}
}

func (a *app) tapeScan(pos []string) error {
	d, err := a.hostDrive(pos, "scan")
	if err != nil {
		return err
	}
	vs, cat, err := d.Scan(a.ctx)
	if err != nil {
		return err
	}
	for _, p := range vs.Problems {
		fmt.Fprintf(a.stderr, "warning: %v\n", p)
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"volume": vs.Label, "files": vs.Files, "sets": vs.Sets, "catalog_copy": vs.Copy != nil,
			"problems": len(vs.Problems), "catalog_sets": len(cat.Sets), "catalog_volumes": len(cat.Volumes)})
	} else {
		fmt.Fprintf(a.stdout, "volume %s (pool %s, sequence %d): %d files, %d save set parts", vs.Label.Volume, vs.Label.Pool, vs.Label.Sequence, vs.Files, len(vs.Sets))
		if vs.Copy != nil {
			fmt.Fprintf(a.stdout, ", catalog copy with %d sets on %d volumes", len(vs.Copy.Sets), len(vs.Copy.Volumes))
		}
		fmt.Fprintf(a.stdout, "\ncatalog %s now lists %d save sets on %d volumes\n", d.Catalog.Path, len(cat.Sets), len(cat.Volumes))
	}
	if len(vs.Problems) > 0 {
		return exitcode.Partialf("%s on volume %s (see above)", plural(len(vs.Problems), "damaged or unreadable record"), vs.Label.Volume)
	}
	return nil
}

func newTapeListCmd(a *app) *cobra.Command {
	var tf *tapeFlags
	var volumes bool
	c := &cobra.Command{
		Use:   "list [DEVICE | tape://host/DEVICE] [--volumes]",
		Short: "the save sets (or volumes) in the tape catalog",
		Long: "List shows the save sets (or, with --volumes, the volumes) of the tape catalog: this host's, or\n" +
			"that of the tape host a tape:// spec names.",
		Example: "  snapferry tape list\n  snapferry tape list tape://backup@tapehost/dev/nst0 --volumes",
		Args:    maxArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.tapeList(args, tf, volumes) },
	}
	tf = addTapeAccessFlags(c.Flags())
	c.Flags().BoolVar(&volumes, "volumes", false, "list the volumes instead of the save sets")
	a.addSSHFlags(c.Flags())
	return c
}

func (a *app) tapeList(pos []string, tf *tapeFlags, volumes bool) error {
	raw, err := tapeDevice(pos, true)
	if err != nil {
		return err
	}
	var cat *tape.Catalog
	if raw == "" {
		dir, err := a.tapeHome()
		if err != nil {
			return err
		}
		cat, err = tape.NewCatalogFile(dir).Load()
	} else {
		var lib tape.Library
		if lib, err = a.openTapeLibrary(raw, tf); err == nil {
			cat, err = lib.Catalog(a.ctx)
			lib.Close()
		}
	}
	if err != nil {
		return err
	}
	if a.jsonOut {
		if volumes {
			a.printJSON(orEmpty(cat.Volumes))
		} else {
			a.printJSON(orEmpty(cat.Sets))
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if volumes {
		sort.Slice(cat.Volumes, func(i, j int) bool {
			vi, vj := cat.Volumes[i], cat.Volumes[j]
			return vi.Pool < vj.Pool || vi.Pool == vj.Pool && vi.Sequence < vj.Sequence
		})
		fmt.Fprintln(tw, "VOLUME\tPOOL\tSEQ\tBLOCK\tFILES\tFULL\tLABELED")
		for _, v := range cat.Volumes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%v\t%s\n", v.ID, v.Pool, v.Sequence, humanBytes(int64(v.BlockSize)), v.Files, v.Full, v.Labeled.Local().Format(time.DateTime))
		}
		return nil
	}
	fmt.Fprintln(tw, "SET\tTIME\tHOST\tKIND\tSOURCE\tSIZE\tSTATE\tWHERE")
	for _, s := range cat.Sets {
		state := "complete"
		if !s.Complete {
			state = "INCOMPLETE"
		}
		var where []string
		for _, p := range s.Parts {
			where = append(where, fmt.Sprintf("%s:%d/%d", p.Volume, p.File, p.Stream))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(s.ID), s.Time.Local().Format(time.DateTime), s.Host, s.Kind,
			s.Source, humanBytes(s.Bytes), state, strings.Join(where, " "))
	}
	return nil
}

func newTapeStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "status [DEVICE]",
		Short:   "the loaded volume's label and what the catalog knows about it",
		Long:    "Status reads the label of the volume in DEVICE (or $SNAPFERRY_TAPE) and shows what the catalog knows about it.",
		Example: "  snapferry tape status /dev/nst0",
		Args:    maxArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.tapeStatus(args) },
	}
}

// tapeStatus shows which volume is loaded and what the catalog knows about it.
func (a *app) tapeStatus(pos []string) error {
	d, err := a.hostDrive(pos, "status")
	if err != nil {
		return err
	}
	dev, err := device.Open(d.Path, device.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	l, lerr := tape.ReadLabel(dev)
	st, serr := dev.Status()
	dev.Close()
	if lerr != nil {
		return lerr
	}
	if serr != nil {
		return serr
	}
	cat, err := d.Catalog.Load()
	if err != nil {
		return err
	}
	v, sets := cat.Volume(l.Volume), 0
	for _, s := range cat.Sets {
		for _, p := range s.Parts {
			if p.Volume == l.Volume {
				sets++
				break
			}
		}
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"label": l, "catalog": v, "sets": sets, "write_protected": st.WriteProtected})
		return nil
	}
	fmt.Fprintf(a.stdout, "%s: volume %s, pool %s, sequence %d, %s records, labeled %s\n", d.Path, l.Volume, l.Pool, l.Sequence,
		humanBytes(int64(l.BlockSize)), l.Labeled.Local().Format(time.DateTime))
	switch {
	case v == nil:
		fmt.Fprintf(a.stdout, "not in the catalog %s: run `snapferry tape scan %s`\n", d.Catalog.Path, d.Path)
	default:
		fmt.Fprintf(a.stdout, "catalog: %d files, %d save sets, full %v\n", v.Files, sets, v.Full)
	}
	if st.WriteProtected {
		fmt.Fprintln(a.stdout, "write-protected")
	}
	return nil
}

// closeTape ends a tape session; a failure there (the catalog copy) is worth a warning, not a
// failed backup: the sets are on tape and in the catalog.
func (a *app) closeTape(lib tape.Library) {
	if err := lib.Close(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(a.stderr, "warning: ending the tape session: %v\n", err)
	}
}
