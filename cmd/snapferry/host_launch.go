package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/deploy"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/sshconn"
)

// hostLaunch is a --host request: where to run, and how to reach it.
type hostLaunch struct {
	target     string
	identity   string
	knownHosts string
	acceptNew  bool
	remotePath string
}

// splitHostFlags takes --host and the SSH options that reach that host out of a command's
// arguments; the rest runs there unchanged. Arguments after "--" are never looked at. With
// --host the SSH options belong to the hop to that host: a remote job that itself reaches a
// store over SSH uses the far host's own keys and known_hosts.
func splitHostFlags(args []string) (hostLaunch, []string, bool) {
	var h hostLaunch
	var rest []string
	take := map[string]*string{"--host": &h.target, "--identity": &h.identity, "--known-hosts": &h.knownHosts, "--remote-path": &h.remotePath}
	found := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if arg == "--accept-new-host-key" {
			h.acceptNew = true
			continue
		}
		name, val, hasVal := strings.Cut(arg, "=")
		dst, ok := take[name]
		if !ok {
			rest = append(rest, arg)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				rest = append(rest, arg) // let the command's parser report the missing value
				continue
			}
			i++
			val = args[i]
		}
		*dst = val
		found = found || name == "--host"
	}
	if !found {
		return hostLaunch{}, args, false
	}
	return h, rest, true
}

// launchOnHost runs the command on another host over SSH: output streams live, the exit
// status is the remote job's, and Ctrl-C or SIGTERM here stops the remote job so its cleanup
// (VM snapshot removal, registry shutdown) runs there. This process registers as sshpipe.
func (a *app) launchOnHost(h hostLaunch, args []string) error {
	if h.target == "" {
		return usagef("--host needs [user@]host[:port]")
	}
	cfg, err := parseHostTarget(h.target)
	if err != nil {
		return err
	}
	if h.identity != "" {
		cfg.Identity = []string{h.identity}
	}
	cfg.KnownHosts = h.knownHosts
	if cfg.KnownHosts == "" {
		cfg.KnownHosts = os.Getenv("SNAPFERRY_KNOWN_HOSTS")
	}
	cfg.AcceptNewHostKey = h.acceptNew
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if reg, err := a.registry(); err == nil {
		if _, err := reg.Begin(ctx, pidmgr.BeginOptions{Type: pidmgr.TypeSSHPipe, Argv: os.Args}); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
		defer reg.Shutdown(context.Background())
	}
	res, err := remoterun.Launch(ctx, remoterun.LaunchOptions{
		SSH: cfg, RemotePath: h.remotePath, Deploy: deploy.Options{Version: version}, Args: args,
		Run: remoterun.Options{Stdout: a.stdout, Stderr: a.stderr},
	})
	if res.Cancelled {
		fmt.Fprintf(a.stderr, "snapferry: stopped the job on %s (exit %d)\n", h.target, res.ExitStatus)
		if res.ExitStatus == 0 {
			return exitcode.New(exitcode.Interrupted, nil)
		}
		return exitcode.New(res.ExitStatus, nil)
	}
	if err != nil {
		return fmt.Errorf("--host=%s: %w", h.target, err)
	}
	if res.ExitStatus != 0 {
		// The far side's status passes through; it printed its own messages.
		return exitcode.New(res.ExitStatus, nil)
	}
	return nil
}

// parseHostTarget reads [user@]host[:port] (a ~/.ssh/config alias works as host).
func parseHostTarget(s string) (sshconn.Config, error) {
	var c sshconn.Config
	if u, rest, ok := strings.Cut(s, "@"); ok {
		c.User, s = u, rest
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "]") {
		p, err := strconv.Atoi(s[i+1:])
		if err != nil || p <= 0 || p > 65535 {
			return c, usagef("--host=%q: port %q is not a number from 1 to 65535", s, s[i+1:])
		}
		c.Port, s = p, s[:i]
	}
	c.Host = strings.Trim(s, "[]")
	if c.Host == "" {
		return c, usagef("--host needs a host name: [user@]host[:port]")
	}
	return c, nil
}
