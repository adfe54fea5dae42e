package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/snapferry/snapferry/images/repo"
)

// runKey manages the passwords of an encrypted repository: each password is one key file in
// keys/ that holds the master key sealed under it.
//
//	snapferry key list   --repo=REPO
//	snapferry key add    --repo=REPO [--new-password-file=FILE]
//	snapferry key remove --repo=REPO ID
//
// The current password opens the repository as for every command (--password-file,
// $SNAPFERRY_PASSWORD_FILE, $SNAPFERRY_PASSWORD, prompt); the new one for `add` comes from
// --new-password-file, $SNAPFERRY_NEW_PASSWORD_FILE, $SNAPFERRY_NEW_PASSWORD or a prompt.
func runKey(a *app, args []string) int {
	repoFlag := a.flags.String("repo", "", "repository (env SNAPFERRY_REPO)")
	newFile := a.flags.String("new-password-file", "", "key add: file whose first line is the new password (env "+envNewPasswordFile+")")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return a.fail(usagef("key needs a subcommand: add, list or remove"))
	}
	sub, rest := pos[0], pos[1:]
	switch {
	case sub != "add" && sub != "list" && sub != "remove":
		return a.fail(usagef("key %q: want add, list or remove", sub))
	case sub == "remove" && len(rest) != 1:
		return a.fail(usagef("key remove takes one key id (see `snapferry key list`)"))
	case sub != "remove" && len(rest) != 0:
		return a.fail(usagef("key %s takes no arguments, got %q", sub, rest))
	case sub != "add" && *newFile != "":
		return a.fail(usagef("--new-password-file is for key add"))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	// Read the new password before opening, so a missing file fails before any scrypt work.
	var newPassword []byte
	if sub == "add" {
		if newPassword, err = a.newKeyPassword(*newFile); err != nil {
			return a.fail(err)
		}
	}
	r, err := a.openRepo(spec, false)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	switch sub {
	case "add":
		id, err := r.AddKey(a.ctx, newPassword, repo.KDFParams{})
		if err != nil {
			return a.fail(err)
		}
		if a.jsonOut {
			a.printJSON(map[string]any{"id": id})
		} else {
			fmt.Fprintf(a.stdout, "added key %s\n", id.Short())
		}
	case "list":
		return a.listKeys(r)
	case "remove":
		id, err := a.findKey(r, rest[0])
		if err != nil {
			return a.fail(err)
		}
		if err := r.RemoveKey(a.ctx, id); err != nil {
			return a.fail(err)
		}
		if a.jsonOut {
			a.printJSON(map[string]any{"removed": id})
		} else {
			fmt.Fprintf(a.stdout, "removed key %s\n", id.Short())
		}
	}
	return exitOK
}

func (a *app) newKeyPassword(file string) ([]byte, error) {
	pw, err := passwordFrom(file, envNewPasswordFile, envNewPassword, "--new-password-file")
	if err != nil || pw != nil {
		return pw, err
	}
	if pw, err = a.promptPassword("new password: ", true); err != nil || pw != nil {
		return pw, err
	}
	return nil, usagef("key add needs the new password: give it in --new-password-file, $%s or $%s", envNewPasswordFile, envNewPassword)
}

func (a *app) listKeys(r *repo.Repository) int {
	keys, err := r.ListKeys(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(keys)
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tHOST\tUSER\tKDF\t")
	for _, k := range keys {
		mark := ""
		if k.Current {
			mark = "(current)"
		}
		kdf := fmt.Sprintf("%s N=%d r=%d p=%d", k.KDF, k.Params.N, k.Params.R, k.Params.P)
		if k.Problem != "" {
			kdf = "damaged: " + k.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID.Short(), k.Created.Format("2006-01-02 15:04:05"), k.Host, k.User, kdf, mark)
	}
	tw.Flush()
	return exitOK
}

// findKey resolves a key id or unique prefix.
func (a *app) findKey(r *repo.Repository, ref string) (repo.ID, error) {
	keys, err := r.ListKeys(a.ctx)
	if err != nil {
		return repo.ID{}, err
	}
	ref = strings.ToLower(ref)
	var match []repo.ID
	for _, k := range keys {
		if strings.HasPrefix(k.ID.String(), ref) {
			match = append(match, k.ID)
		}
	}
	switch {
	case ref == "" || len(match) == 0:
		return repo.ID{}, usagef("key %q: no such key (see `snapferry key list`)", ref)
	case len(match) > 1:
		return repo.ID{}, usagef("key %q: %d keys match; give more digits", ref, len(match))
	}
	return match[0], nil
}
