package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/term"

	"github.com/snapferry/snapferry/images/repo"
)

// Repository passwords come from a file or the environment, never from a flag value: the
// command line of every process is visible to every user of the host (`ps`, and on ESXi
// `esxcli system process list`). Sources, first match wins:
//
//	--password-file=FILE, $SNAPFERRY_PASSWORD_FILE, $SNAPFERRY_PASSWORD, a prompt on a terminal.
//
// A password is never printed and never put into an error message; errors name the file.
const (
	envPassword     = "SNAPFERRY_PASSWORD"
	envPasswordFile = "SNAPFERRY_PASSWORD_FILE"
	// The password of a key being added (`key add`) has its own sources, so a script can give
	// both at once.
	envNewPassword     = "SNAPFERRY_NEW_PASSWORD"
	envNewPasswordFile = "SNAPFERRY_NEW_PASSWORD_FILE"
	flagPasswordFile   = "password-file"
)

// opensRepository names the commands that open (or create) a repository and therefore take
// --password-file.
func opensRepository(cmd string) bool {
	return slices.Contains([]string{"init", "backup", "snapshots", "ls", "restore", "check", "forget", "prune",
		"rebuild-index", "repair", "unlock", "key"}, cmd)
}

// addPasswordFlag registers --password-file. main registers it for opensRepository commands,
// before the command defines its own flags.
func (a *app) addPasswordFlag() {
	a.flags.String(flagPasswordFile, "", "file whose first line is the repository password (env "+envPasswordFile+
		"; or set "+envPassword+")")
}

// repoPassword returns the password given by flag or environment, or nil if none is.
func (a *app) repoPassword() ([]byte, error) {
	file := ""
	if f := a.flags.Lookup(flagPasswordFile); f != nil {
		file = f.Value.String()
	}
	return passwordFrom(file, envPasswordFile, envPassword, "--"+flagPasswordFile)
}

// passwordFrom reads the first of: file (named by what in messages), the file named by
// $fileEnv, $valueEnv. nil means none was given.
func passwordFrom(file, fileEnv, valueEnv, what string) ([]byte, error) {
	if file == "" {
		file, what = os.Getenv(fileEnv), "$"+fileEnv
	}
	if file != "" {
		return readPasswordFile(file, what)
	}
	if v := os.Getenv(valueEnv); v != "" {
		return []byte(v), nil
	}
	return nil, nil
}

// readPasswordFile returns the first line of a password file without its line break.
func readPasswordFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%s %s: %v", what, path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read password file %s: %w", path, err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, usagef("%s %s: the first line is empty; write the password on it", what, path)
	}
	return b, nil
}

// promptPassword asks on the terminal (no echo). It returns nil without asking when stdin is
// not a terminal (cron, scripts), so those get the "password required" error instead of a hang.
func (a *app) promptPassword(prompt string, confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if a.cancelOnStdinEOF || !term.IsTerminal(fd) {
		return nil, nil
	}
	fmt.Fprint(a.stderr, prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(pw) == 0 {
		return nil, usagef("empty password")
	}
	if confirm {
		fmt.Fprint(a.stderr, "enter it again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, fmt.Errorf("read password from the terminal: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, usagef("the two passwords differ")
		}
	}
	return pw, nil
}

// newRepoPassword is the password of a repository being created (init --encrypt): the usual
// sources, else a confirmed prompt.
func (a *app) newRepoPassword() ([]byte, error) {
	pw, err := a.repoPassword()
	if err != nil || pw != nil {
		return pw, err
	}
	if pw, err = a.promptPassword("password for the new repository: ", true); err != nil || pw != nil {
		return pw, err
	}
	return nil, usagef("--encrypt needs a password: give it in --%s, $%s or $%s", flagPasswordFile, envPasswordFile, envPassword)
}

// openPassword is the password for opening an existing repository. When none was given and
// the repository turns out to be encrypted, the caller asks again with prompt=true.
func (a *app) openPassword(prompt bool) ([]byte, error) {
	pw, err := a.repoPassword()
	if err != nil || pw != nil || !prompt {
		return pw, err
	}
	return a.promptPassword("repository password: ", false)
}

// needsPrompt reports an open that failed only for want of a password a terminal could give.
func needsPrompt(err error, given []byte) bool {
	return given == nil && errors.Is(err, repo.ErrNoPassword)
}
