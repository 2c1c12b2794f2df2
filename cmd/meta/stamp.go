package main

import (
	"errors"
	"fmt"
	"os"

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
			var h *fold.Head
			if err := e.answer(cmd.Context(), s, func() (err error) { h, err = s.Head(args[0]); return err }); err != nil {
				return err
			}
			version, err := syncVersion(h)
			if err != nil {
				return err
			}
			if _, err := os.Stat(args[1]); err != nil {
				return usageError{fmt.Errorf("stamp %s: %w", args[1], err)}
			}
			return abra.StampFile(args[1], version)
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
