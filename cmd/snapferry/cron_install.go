package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/cron"
)

// esxiAutoBackup saves ESXi's configuration (local.sh included) to the boot bank; it runs
// hourly by itself, but a reboot before then would lose a fresh --persist stanza.
const esxiAutoBackup = "/sbin/auto-backup.sh"

// installReport is what `cron install --json` prints.
type installReport struct {
	Crontab        string `json:"crontab"`
	CrontabChanged bool   `json:"crontab_changed"`
	Jobs           int    `json:"jobs"`
	Suspended      bool   `json:"suspended"`
	FirewallRule   string `json:"firewall_rule,omitempty"`
	LocalSh        string `json:"local_sh,omitempty"`
	LocalShChanged bool   `json:"local_sh_changed,omitempty"`
}

// runCronInstall is `snapferry cron install [--crontab=FILE] [--persist] [--local-sh=FILE]
// [--smtp-firewall]`: one marked line per job in the crontab, optionally the ESXi firewall rule
// for outbound SMTP and the local.sh stanza that redoes both at boot. Every step is idempotent,
// so the boot stanza simply runs it again.
func newCronInstallCmd(a *app) *cobra.Command {
	var o cronInstallOptions
	c := &cobra.Command{
		Use:   "install [--crontab=FILE] [--persist] [--local-sh=FILE] [--smtp-firewall]",
		Short: "write the crontab lines (and, on ESXi, the boot stanza)",
		Long: "Install writes one marked line per job into the crontab; on ESXi it can also open outbound SMTP\n" +
			"in the firewall and add a stanza to local.sh that redoes both at boot. Every step is\n" +
			"idempotent: running it again changes nothing that is right.",
		Example: "  snapferry cron install\n  snapferry cron install --persist --smtp-firewall",
		Args:    noArgs,
		RunE:    func(c *cobra.Command, _ []string) error { return a.cronInstall(c.Flags(), o) },
	}
	fs := c.Flags()
	a.addCrontabFlag(fs, &o.crontab)
	fs.BoolVar(&o.persist, "persist", false, "ESXi: add a stanza to local.sh that re-installs at boot (it reflects this run's --smtp-firewall)")
	fs.StringVar(&o.localSh, "local-sh", "", "boot script for --persist (default "+cron.DefaultLocalSh+")")
	fs.BoolVar(&o.smtpFirewall, "smtp-firewall", false, "ESXi: open outbound SMTP in the firewall for e-mail reports")
	fs.StringVar(&o.firewallDir, "firewall-dir", cron.DefaultFirewallDir, "folder of ESXi firewall rule files")
	fs.MarkHidden("firewall-dir") // for tests and unusual layouts; esxcli must still be on PATH
	return c
}

type cronInstallOptions struct {
	crontab, localSh, firewallDir string
	persist, smtpFirewall         bool
}

func (a *app) cronInstall(fs *pflag.FlagSet, o cronInstallOptions) error {
	crontabPath, localSh, firewallDir, persist, smtpFirewall := o.crontab, o.localSh, o.firewallDir, o.persist, o.smtpFirewall
	esxi := cron.IsESXi()
	// Check every option before changing anything: a half-done install is worse than none.
	if smtpFirewall && !esxi && !fs.Changed("firewall-dir") {
		return usagef("--smtp-firewall: this is not an ESXi host; only ESXi needs a firewall rule for outbound SMTP")
	}
	if fs.Changed("local-sh") && !persist {
		return usagef("--local-sh goes with --persist")
	}
	for _, p := range []*string{&crontabPath, &localSh, &firewallDir} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return usagef("path %s: %v", *p, err)
			}
			*p = abs
		}
	}
	if persist {
		if localSh == "" && !esxi {
			return usagef("--persist: this is not an ESXi host, where the user's crontab survives reboots anyway; give --local-sh=FILE to write a boot stanza all the same")
		}
		if crontabPath == "" && !esxi {
			return usagef("--persist: the boot stanza needs a crontab file; give --crontab=FILE")
		}
		if localSh == "" {
			localSh = cron.DefaultLocalSh
		}
	}
	store, home, err := a.cronStore()
	if err != nil {
		return err
	}
	lines, err := cronLineOptions(home)
	if err != nil {
		return err
	}
	f, err := store.Load(a.ctx)
	if err != nil {
		return err
	}
	rep := installReport{Jobs: len(f.Jobs), Suspended: f.Suspended}

	if smtpFirewall {
		if err := cron.InstallFirewallRule(a.ctx, firewallDir, cron.ExecRunner); err != nil {
			return err
		}
		rep.FirewallRule = filepath.Join(firewallDir, cron.FirewallRuleName)
	}
	target, restart := cron.TargetFor(crontabPath, esxi, cron.ExecRunner)
	rep.Crontab = target.String()
	if rep.CrontabChanged, err = cron.InstallFromStore(a.ctx, store, lines, target, restart); err != nil {
		return err
	}
	if persist {
		o := cron.PersistOptions{Binary: lines.Binary, Home: home, Crontab: crontabPath}
		if smtpFirewall {
			o.FirewallDir = firewallDir
		}
		rep.LocalSh = localSh
		if rep.LocalShChanged, err = cron.Persist(localSh, cron.PersistStanza(o)); err != nil {
			return err
		}
		if rep.LocalShChanged && esxi && localSh == cron.DefaultLocalSh {
			if _, err := cron.ExecRunner(a.ctx, esxiAutoBackup); err != nil {
				return fmt.Errorf("stanza written to %s, but saving the configuration failed (run %s by hand, or the stanza is lost at an immediate reboot): %w", localSh, esxiAutoBackup, err)
			}
		}
	}
	if a.jsonOut {
		a.printJSON(rep)
		return nil
	}
	printInstallReport(a, rep)
	if esxi && !persist {
		fmt.Fprintln(a.stdout, "note: ESXi rebuilds its crontab at boot; add --persist to keep these lines")
	}
	return nil
}

func printInstallReport(a *app, rep installReport) {
	if rep.FirewallRule != "" {
		fmt.Fprintf(a.stdout, "firewall rule %s installed and loaded\n", rep.FirewallRule)
		if rep.LocalSh == "" {
			fmt.Fprintln(a.stdout, "note: ESXi rebuilds /etc at boot; add --persist to keep the rule")
		}
	}
	state := "unchanged"
	if rep.CrontabChanged {
		state = "updated"
	}
	fmt.Fprintf(a.stdout, "crontab %s %s: %d job line(s)\n", rep.Crontab, state, rep.Jobs)
	if rep.Suspended {
		fmt.Fprintln(a.stdout, "scheduling is SUSPENDED: the lines are written commented out until `snapferry cron resume`")
	}
	if rep.LocalSh != "" {
		state = "unchanged"
		if rep.LocalShChanged {
			state = "updated"
		}
		fmt.Fprintf(a.stdout, "boot stanza in %s %s\n", rep.LocalSh, state)
	}
}
