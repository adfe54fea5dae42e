package cronrun

import (
	"fmt"

	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/cron"
)

// ValidateJob checks a job completely before `cron add` stores it: its definition (cron) and its
// mail settings and hooks (notify), so a typo is reported at add time and not at 2 a.m.
func ValidateJob(j cron.Job) error {
	if err := j.Validate(); err != nil {
		return err
	}
	if err := notify.MailConfig(j.Mail).Validate(); err != nil {
		return fmt.Errorf("job %s: %w", j.Name, err)
	}
	if _, err := notify.ParseHooks(j.Hooks); err != nil {
		return fmt.Errorf("job %s: %w", j.Name, err)
	}
	return nil
}
