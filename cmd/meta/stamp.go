package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

func newStamp(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stamp DOMAIN FILE",
		Short: "Write the log's version of an app into an env file as OPERATOR_SYNC_VERSION",
		Long: `stamp writes OPERATOR_SYNC_VERSION=<version>, the version the log says is
deployed, into FILE under a "# managed by meta" comment, replacing an older
stamp: the line Co-op Cloud's Resolution 013 reserves for operator sync.
FILE is usually the app's abra env file.`,
		Example:           `  meta stamp matrix.example.com ~/.abra/servers/swarm1.example.com/matrix.example.com.env`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			h, err := s.Head(args[0])
			if err != nil {
				return err
			}
			version, err := syncVersion(h)
			if err != nil {
				return err
			}
			path := args[1]
			fi, err := os.Stat(path)
			if err != nil {
				return usageError{fmt.Errorf("stamp %s: %w", path, err)}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("stamp %s: %w", path, err)
			}
			// Written beside and renamed over, so an interrupted stamp
			// leaves the old file whole.
			tmp, err := os.CreateTemp(filepath.Dir(path), ".meta-stamp-*")
			if err != nil {
				return fmt.Errorf("stamp %s: %w", path, err)
			}
			defer os.Remove(tmp.Name())
			_, err = tmp.Write(abra.Stamp(data, version))
			if err == nil {
				err = tmp.Chmod(fi.Mode().Perm())
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), path)
			}
			if err != nil {
				return fmt.Errorf("stamp %s: %w", path, err)
			}
			return nil
		},
	}
	return cmd
}

// syncVersion is the version OPERATOR_SYNC_VERSION carries: the chaos
// version under --chaos, else the deployed version.
func syncVersion(h *fold.Head) (string, error) {
	v := h.Running()
	if v == "" {
		return "", errors.New(h.Domain + " has no deployed version in the log")
	}
	return v, nil
}
