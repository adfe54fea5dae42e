package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

// newKeyCmd manages the passwords of an encrypted repository: each password is one key file in
// keys/ that holds the master key sealed under it. The current password opens the repository as
// for every command (--password-file, $SNAPFERRY_PASSWORD_FILE, $SNAPFERRY_PASSWORD, prompt); the
// new one for `add` comes from --new-password-file, $SNAPFERRY_NEW_PASSWORD_FILE,
// $SNAPFERRY_NEW_PASSWORD or a prompt.
func newKeyCmd(a *app) *cobra.Command {
	var newFile string
	add := &cobra.Command{
		Use:   "add --repo=REPO [--new-password-file=FILE]",
		Short: "add a password",
		Long: "Add seals the repository's master key under a new password, as a new key file. Either\n" +
			"password then opens the repository.",
		Example: "  snapferry key add --repo=/backup/repo --password-file=old.txt --new-password-file=new.txt",
		Args:    noArgs,
	}
	add.Flags().StringVar(&newFile, "new-password-file", "", "file whose first line is the new password (env "+envNewPasswordFile+")")
	list := &cobra.Command{
		Use:     "list --repo=REPO",
		Short:   "list the passwords (key files)",
		Long:    "List shows every key file: id, when and where it was made, its KDF, and which one opened the repository.",
		Example: "  snapferry key list --repo=/backup/repo",
		Args:    noArgs,
	}
	remove := &cobra.Command{
		Use:     "remove ID --repo=REPO",
		Short:   "remove a password",
		Long:    "Remove deletes one key file (ID, or a unique prefix, from key list). The last one cannot be removed.",
		Example: "  snapferry key remove 5e1f --repo=/backup/repo",
		Args:    exactArgs(1),
	}
	for _, sub := range []*cobra.Command{add, list, remove} {
		repoFlag := a.addRepoFlag(sub.Flags())
		sub.RunE = func(c *cobra.Command, args []string) error { return a.key(c.Name(), args, *repoFlag, newFile) }
	}
	return groupCmd("key COMMAND", "passwords of an encrypted repository: add, list, remove",
		"Key manages the passwords of an encrypted repository: each password is one key file that holds\n"+
			"the master key sealed under it (docs/security.md).", add, list, remove)
}

func (a *app) key(sub string, rest []string, repoFlag, newFile string) error {
	spec, err := repoSpec(repoFlag, "repo")
	if err != nil {
		return err
	}
	// Read the new password before opening, so a missing file fails before any scrypt work.
	var newPassword []byte
	if sub == "add" {
		if newPassword, err = a.newKeyPassword(newFile); err != nil {
			return err
		}
	}
	r, err := a.openRepo(spec, false)
	if err != nil {
		return err
	}
	defer r.Close()
	switch sub {
	case "add":
		id, err := r.AddKey(a.ctx, newPassword, repo.KDFParams{})
		if err != nil {
			return err
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
			return err
		}
		if err := r.RemoveKey(a.ctx, id); err != nil {
			return err
		}
		if a.jsonOut {
			a.printJSON(map[string]any{"removed": id})
		} else {
			fmt.Fprintf(a.stdout, "removed key %s\n", id.Short())
		}
	}
	return nil
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

func (a *app) listKeys(r *repo.Repository) error {
	keys, err := r.ListKeys(a.ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(orEmpty(keys))
		return nil
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
	return tw.Flush()
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
