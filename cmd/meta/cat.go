package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newCat(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cat FILE",
		Short: "Decode one event record into readable text",
		Long: `cat decodes one record file. It needs no log, so git can use it as a textconv
driver and show events as text in ` + "`git log -p`" + `:

  git config diff.meta.textconv "meta cat"
  echo '*.pb diff=meta' >> .git/info/attributes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ev, err := record.Unmarshal(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return writeEvent(e.stdout, record.ViewOf(ev), ev, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the event as JSON")
	return cmd
}
