package cronrun

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/crontest"
)

// A report mail that cannot be sent is the run's MailErr (for the history, `status` and the exit
// status), not only a warning; the job's own outcome stays what it was.
func TestUnsentMailIsReported(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String() // nothing listens there once closed
	l.Close()
	store := cron.NewStore(t.TempDir())
	job := cron.Job{Name: "nightly", Schedule: "0 2 * * *", Args: []string{"backup", "--vm=all"},
		Mail: cron.Mail{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: closed, TLS: "none", On: "always"}}
	if err := store.Add(ctx, job, false); err != nil {
		t.Fatal(err)
	}
	bin, _ := fakeSnapferry(t, []int{0}, 0, nil)
	res, err := Run(ctx, Options{Store: store, Name: "nightly", Binary: bin, Host: "esx01", MailTimeout: 5 * time.Second,
		Clock: crontest.NewFakeClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))})
	if err != nil || res.Err() != nil {
		t.Fatalf("run: %v, %v", err, res.Err())
	}
	if res.MailSent || res.MailErr == nil {
		t.Fatalf("mail sent %v, MailErr %v; want the failure reported", res.MailSent, res.MailErr)
	}
}
