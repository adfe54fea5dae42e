package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

func runInit(a *app, args []string) int {
	bs := a.flags.String("block-size", "1M", "disk image block size (64K..16M, a power of two)")
	packSize := a.flags.String("pack-size", "32M", "target pack file size (4M..256M)")
	encrypt := a.flags.Bool("encrypt", false, "encrypt the repository (password from --password-file, SNAPFERRY_PASSWORD_FILE, SNAPFERRY_PASSWORD or a prompt)")
	comp := a.addCompressionFlag("the repository's default compression for new data")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.fail(usagef("init takes one repository: snapferry init REPO"))
	}
	size, err := parseSize(*bs)
	if err != nil || size <= 0 {
		return a.fail(usagef("--block-size=%q: want a size like 1M or 512K", *bs))
	}
	ps, err := parseSize(*packSize)
	if err != nil || ps < 4<<20 || ps > 256<<20 {
		return a.fail(usagef("--pack-size=%q: want a size from 4M to 256M", *packSize))
	}
	defComp, err := compressionChoice(*comp)
	if err != nil {
		return a.fail(err)
	}
	// security helper: --encrypt takes the new repository's password (secrets.go).
	var password []byte
	if *encrypt {
		if password, err = a.newRepoPassword(); err != nil {
			return a.fail(err)
		}
	} else if given, _ := a.repoPassword(); given != nil {
		// Every later command would refuse the unencrypted repository for this password.
		return a.fail(usagef("a repository password is given (--%s, $%s or $%s) but not --encrypt: add --encrypt, "+
			"or unset it for an unencrypted repository", flagPasswordFile, envPasswordFile, envPassword))
	}
	be, err := a.openBackend(pos[0])
	if err != nil {
		return a.fail(err)
	}
	defer be.Close()
	cfg, err := repo.Init(a.ctx, be, repo.InitOptions{BlockSize: int(size), PackSize: ps, Password: password, Compression: defComp})
	if err != nil {
		return a.fail(err) // repo.Init's errors name the repository
	}
	if a.jsonOut {
		a.printJSON(cfg)
		return exitOK
	}
	fmt.Fprintf(a.stdout, "created repository %s at %s (block size %s)\n", cfg.ID, pos[0], humanBytes(int64(cfg.BlockSize)))
	if *encrypt {
		fmt.Fprintln(a.stdout, "encrypted: without its password the repository cannot be read by anyone; keep the password safe (add a second one with `snapferry key add`)")
	}
	return exitOK
}
