package main

import (
	"errors"
	"os"
	"path/filepath"
)

// vibBinaryDir is where the ESXi VIB installs the binary (appliance/esxi/vib, cmd/vibgen).
const vibBinaryDir = "/opt/snapferry"

// errVIBHome: a binary installed from the VIB must be told its state folder. /opt and / are
// rebuilt at every ESXi boot, so a var/ beside the binary or a ~/.snapferry would lose the jobs,
// history and locks silently at the next reboot.
var errVIBHome = errors.New("state folder: snapferry runs from the VIB (" + vibBinaryDir + "), where nothing survives a reboot; " +
	"give --home=/vmfs/volumes/DATASTORE/snapferry/var or set SNAPFERRY_HOME (install-esxi.sh created and printed it)")

// fromVIB reports whether exe (the running binary's path) is the VIB-installed binary.
func fromVIB(exe string) bool {
	return filepath.Dir(filepath.Clean(exe)) == vibBinaryDir
}

// vibHomeCheck is errVIBHome when this process runs from the VIB, else nil. It is asked only
// when neither --home nor SNAPFERRY_HOME chose the state folder.
func vibHomeCheck() error {
	exe, err := os.Executable()
	if err != nil || exe == "" {
		exe = os.Args[0]
	}
	if fromVIB(exe) {
		return errVIBHome
	}
	return nil
}
