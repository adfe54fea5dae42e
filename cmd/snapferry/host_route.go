package main

import (
	"github.com/spf13/cobra"
)

// hostAnnotation marks the commands that run on another host with --host (addHostFlag).
const hostAnnotation = "snapferry/host"

// addHostFlag registers --host on a command that may run on another host over SSH. The SSH
// options given with it (--identity, --known-hosts, --accept-new-host-key, --remote-path) then
// belong to the hop to that host (splitHostFlags).
func (a *app) addHostFlag(c *cobra.Command) {
	if c.Flags().Lookup("identity") == nil {
		a.addSSHFlags(c.Flags())
	}
	c.Flags().String("host", "", "run this command on another host over SSH: [user@]host[:port]")
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[hostAnnotation] = "true"
}

// routeHost makes every command marked by addHostFlag launch itself on the --host it was given
// instead of running here. The command line was parsed and checked here first, so a typo fails
// before any SSH connection. On the far side (--cancel-on-stdin-eof) --host is never given.
func (a *app) routeHost(root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		if c.Annotations[hostAnnotation] == "" || c.RunE == nil {
			return
		}
		local := c.RunE
		c.RunE = func(c *cobra.Command, args []string) error {
			if f := c.Flags().Lookup("host"); f == nil || !f.Changed || a.cancelOnStdinEOF {
				return local(c, args)
			}
			h, rest, _ := splitHostFlags(a.argv)
			return a.launchOnHost(h, rest)
		}
	})
}
