package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/appliance/cronrun"
	"github.com/snapferry/snapferry/cron"
)

func newCronAddCmd(a *app) *cobra.Command {
	var o cronAddOptions
	c := &cobra.Command{
		Use:   `add NAME "SCHEDULE" [options] -- COMMAND [ARGS...]`,
		Short: "store a job: a snapferry command on a schedule",
		Long: "Add stores job NAME: the snapferry COMMAND after -- (backup, replica, check, forget, prune,\n" +
			"restore, copy or retain) run on SCHEDULE (5 cron fields or @daily, in the host's local time), with retries,\n" +
			"mail and hooks. The whole job is checked now (schedule, the command's flags and repository,\n" +
			"mail settings, hooks), not at 2 a.m. Where crontab lines are installed they are refreshed.",
		Example: `  snapferry cron add nightly "30 2 * * *" -- backup --vm=all --to=/vmfs/volumes/backup/repo
  snapferry cron add weekly-check "@weekly" --retries=2 --mail-to=ops@example.com \
      --mail-from=esxi01@example.com --smtp=mail.example.com:587 -- check --repo=/vmfs/volumes/backup/repo
  snapferry cron add offsite "30 4 * * *" -- copy --from=/vmfs/volumes/backup/repo \
      --to=s3://rgw.example.net/backups/site-a --latest=7`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error { return a.cronAdd(c.Flags(), args, o) },
	}
	job := &o.job
	fs := c.Flags()
	fs.IntVar(&job.Retry.Retries, "retries", 0, "retry a failed run up to N times")
	fs.DurationVar(&o.delay, "retry-delay", 5*time.Minute, "pause before each retry")
	fs.DurationVar(&o.window, "retry-window", 0, "no retry starts later than this after the first attempt (0: until the next scheduled run)")
	fs.StringSliceVar(&job.Mail.To, "mail-to", nil, "mail the report to these addresses (repeat or comma-separate)")
	fs.StringVar(&job.Mail.From, "mail-from", "", "sender address of the report")
	fs.StringVar(&job.Mail.Server, "smtp", "", "SMTP server HOST:PORT")
	fs.StringVar(&job.Mail.User, "smtp-user", "", "SMTP user (with --smtp-password-file)")
	fs.StringVar(&job.Mail.PasswordFile, "smtp-password-file", "", "file whose first line is the SMTP password")
	fs.StringVar(&job.Mail.TLS, "smtp-tls", "", "starttls (default), tls or none")
	fs.StringVar(&job.Mail.CAFile, "smtp-ca-file", "", "trust this CA certificate (PEM) for the SMTP server")
	fs.StringVar(&job.Mail.On, "mail-on", "", "always (default) or failure (covers partial runs)")
	// StringArray, not StringSlice: a hook is "EVENT,EVENT:COMMAND" and its commas are its own.
	fs.StringArrayVar(&job.Hooks, "on-event", nil, "EVENT[,EVENT]:COMMAND run on job events (repeatable)")
	fs.BoolVar(&o.replace, "replace", false, "overwrite a job of the same name")
	a.addCrontabFlag(fs, &o.crontab)
	return c
}

type cronAddOptions struct {
	job           cron.Job
	delay, window time.Duration
	replace       bool
	crontab       string
}

// cronAdd checks the whole job (schedule, command, mail settings, hooks) and stores it, so a
// typo shows now and not in a log at 2 a.m.
func (a *app) cronAdd(fs *pflag.FlagSet, pos []string, o cronAddOptions) error {
	job, delay, window, replace, crontabPath := o.job, o.delay, o.window, o.replace, o.crontab
	dash := fs.ArgsLenAtDash()
	if dash < 0 {
		return usagef(`give the job's snapferry command after --: cron add NAME "SCHEDULE" [options] -- backup --vm=all --to=REPO`)
	}
	if dash != 2 {
		return usagef(`want NAME and "SCHEDULE" before --, got %d arguments (%s); quote the schedule: "30 2 * * *"`, dash, strings.Join(pos[:dash], " "))
	}
	job.Name, job.Schedule, job.Args = pos[0], pos[1], pos[2:]
	if err := checkJobCommand(job.Args); err != nil {
		return err
	}
	if err := checkAbsolutePaths(job.Args); err != nil {
		return err
	}
	if job.Retry.Retries == 0 && (fs.Changed("retry-delay") || fs.Changed("retry-window")) {
		return usagef("--retry-delay and --retry-window need --retries=N")
	}
	if job.Retry.Retries > 0 {
		job.Retry.Delay, job.Retry.Window = cron.Duration(delay), cron.Duration(window)
	}
	// crond starts the run in another folder: files named relative to here would not be found.
	for _, p := range []*string{&job.Mail.PasswordFile, &job.Mail.CAFile} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return fmt.Errorf("cron add %s: %w", job.Name, err)
			}
			*p = abs
		}
	}
	if err := cronrun.ValidateJob(job); err != nil {
		return asUsage(err)
	}
	store, home, err := a.cronStore()
	if err != nil {
		return err
	}
	if err := store.Add(a.ctx, job, replace); err != nil {
		if errors.Is(err, cron.ErrJobExists) {
			return usagef("%v (--replace overwrites it)", err)
		}
		return err
	}
	if a.jsonOut {
		a.printJSON(job)
	} else {
		next, _ := cron.NextRun(job, time.Now())
		fmt.Fprintf(a.stdout, "job %s stored in %s; next run %s\n", job.Name, store.Path(), when(next))
	}
	installed, err := a.refreshCrontab(store, home, crontabPath)
	if err != nil {
		return err
	}
	if !installed {
		a.cronNote("not scheduled yet: run `snapferry cron install` to write the crontab lines")
	}
	return nil
}

// checkAbsolutePaths refuses an argument (or a --flag=VALUE value) that names an existing file
// by a relative path: crond starts the job in another folder, where it would miss the file or,
// worse, find another one.
func checkAbsolutePaths(args []string) error {
	for _, arg := range args[1:] {
		v := arg
		if strings.HasPrefix(arg, "-") {
			_, after, ok := strings.Cut(arg, "=")
			if !ok {
				continue
			}
			v = after
		}
		if v == "" || filepath.IsAbs(v) || strings.Contains(v, "://") {
			continue
		}
		if _, err := os.Stat(v); err == nil {
			abs, _ := filepath.Abs(v)
			return usagef("argument %q names %s by a relative path; crond starts jobs in another folder, so write %s", arg, v, abs)
		}
	}
	return nil
}
