package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newInitCmd(a *app) *cobra.Command {
	var o initOptions
	c := &cobra.Command{
		Use:   "init REPO [options]",
		Short: "create a repository",
		Long: "Init creates an empty repository in REPO: a local folder, ssh://[user@]host[:port]/path (snapferry\n" +
			"is deployed there and runs as serve) or sftp://[user@]host/path. With --encrypt every file in it\n" +
			"is encrypted under a password (docs/security.md).",
		Example: "  snapferry init /backup/repo\n" +
			"  snapferry init ssh://backup@nas/volume1/snapferry --encrypt --password-file=/root/.repo-pass",
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return a.init(args[0], o) },
	}
	fs := c.Flags()
	fs.StringVar(&o.blockSize, "block-size", "1M", "disk image block size: a power of two from 4K to 64M")
	fs.StringVar(&o.packSize, "pack-size", "32M", "target pack file size (4M..256M)")
	fs.BoolVar(&o.encrypt, "encrypt", false, "encrypt the repository (password from --password-file, SNAPFERRY_PASSWORD_FILE, SNAPFERRY_PASSWORD or a prompt)")
	fs.StringVar(&o.compression, "compression", "", compressionUsage("the repository's default compression for new data"))
	a.addSSHFlags(fs)
	a.addS3LockFlag(fs)
	a.addPasswordFlag(fs)
	return c
}

type initOptions struct {
	blockSize, packSize, compression string
	encrypt                          bool
}

func (a *app) init(spec string, o initOptions) error {
	bs, packSize, encrypt := &o.blockSize, &o.packSize, &o.encrypt
	size, err := parseSize(*bs)
	if err != nil || size <= 0 {
		return usagef("--block-size=%q: want a size like 1M or 512K", *bs)
	}
	ps, err := parseSize(*packSize)
	if err != nil || ps < 4<<20 || ps > 256<<20 {
		return usagef("--pack-size=%q: want a size from 4M to 256M", *packSize)
	}
	defComp, err := compressionChoice(o.compression)
	if err != nil {
		return err
	}
	// security helper: --encrypt takes the new repository's password (secrets.go).
	var password []byte
	if *encrypt {
		if password, err = a.newRepoPassword(); err != nil {
			return err
		}
	} else if given, _ := a.repoPassword(); given != nil {
		// Every later command would refuse the unencrypted repository for this password.
		return usagef("a repository password is given (--%s, $%s or $%s) but not --encrypt: add --encrypt, "+
			"or unset it for an unencrypted repository", flagPasswordFile, envPasswordFile, envPassword)
	}
	a.createStore = true
	be, err := a.openBackend(spec)
	if err != nil {
		return err
	}
	defer be.Close()
	if cfg, err := repo.LoadConfig(a.ctx, be); err == nil {
		return fmt.Errorf("%s is a snapferry repository already (id %s); nothing was changed", spec, cfg.ID)
	}
	cfg, err := repo.Init(a.ctx, be, repo.InitOptions{BlockSize: int(size), PackSize: ps, Password: password, Compression: defComp})
	if err != nil {
		return err // repo.Init's errors name the repository
	}
	if a.jsonOut {
		a.printJSON(cfg)
		return nil
	}
	fmt.Fprintf(a.stdout, "created repository %s at %s (block size %s)\n", cfg.ID, spec, humanBytes(int64(cfg.BlockSize)))
	if *encrypt {
		fmt.Fprintln(a.stdout, "encrypted: without its password the repository cannot be read by anyone; keep the password safe (add a second one with `snapferry key add`)")
	}
	return nil
}
