// Command esxisim is the ESXi host simulator the tests and `make demo` run against: a multi-call
// binary answering as vim-cmd, vmkfstools, esxcli and vmware (link it under those names, or call
// `esxisim vim-cmd ...`), plus `esxisim init|demo ROOT` and a simulated guest (`esxisim guest`).
// The logic lives in appliance/esxi/sim.
package main

import (
	"os"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
)

func main() {
	os.Exit(sim.Run(os.Args[0], os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
