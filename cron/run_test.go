package cron

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSubcommandExitCodes(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := Subcommand(ctx, "/bin/sh", []string{"-c", "echo hello $EXTRA; echo oops >&2"}, []string{"EXTRA=env"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello env\noops\n" {
		t.Fatalf("output %q", out.String())
	}
	for code, permanent := range map[string]bool{"1": false, "2": true, "3": false, "10": true, "11": false, "12": true} {
		err := Subcommand(ctx, "/bin/sh", []string{"-c", "exit " + code}, nil, &out)
		var ee *ExitError
		if !errors.As(err, &ee) || IsPermanent(err) != permanent || !strings.Contains(err.Error(), "status "+code) {
			t.Errorf("exit %s: %v permanent=%v", code, err, IsPermanent(err))
		}
	}
	if err := Subcommand(ctx, "/nonexistent/snapferry", nil, nil, &out); err == nil || IsPermanent(err) {
		t.Fatalf("missing binary: %v", err)
	}
}
