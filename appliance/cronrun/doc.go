// Package cronrun is `snapferry cron run NAME` without the CLI around it: it loads the job,
// appends to the job's log, runs the job's snapferry command as a child process once and then
// as the retry policy allows, fires the job's event hooks, and mails the report of the attempt
// that counted.
//
// It joins cron (job definitions, retry policy, job log) and appliance/notify (hooks, mail),
// which stay independent of each other. Registering in the PID registry (type cron) and writing
// the job history (cron/history) are the caller's: Options.OnAttempt gets every attempt.
//
// The child learns where to leave its report through the environment variable
// notify.ReportFileEnv; a child that writes none still gets a report (job name, result, error).
// Nothing after the child has run (hooks, mail) can turn a good backup into a failed run: those
// problems are returned as warnings.
package cronrun
