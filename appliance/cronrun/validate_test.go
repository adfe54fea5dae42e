package cronrun

import (
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron"
)

func TestValidateJob(t *testing.T) {
	good := cron.Job{Name: "n", Schedule: "@daily", Args: []string{"check"},
		Mail:  cron.Mail{To: []string{"ops@example.com"}, From: "a@example.com", Server: "mail:25", TLS: "none"},
		Hooks: []string{"job.failure:true"}}
	if err := ValidateJob(good); err != nil {
		t.Fatal(err)
	}
	for want, mutate := range map[string]func(*cron.Job){
		"parse schedule": func(j *cron.Job) { j.Schedule = "@every 1h" },
		"--smtp-tls":     func(j *cron.Job) { j.Mail.TLS = "ssl" },
		"unknown event":  func(j *cron.Job) { j.Hooks = []string{"job.done:true"} },
	} {
		j := good
		mutate(&j)
		if err := ValidateJob(j); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}
