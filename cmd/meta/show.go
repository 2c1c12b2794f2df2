package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newShow(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print one event, every field of it",
		Long: `show prints the event ID names: its whole id or, as meta log shows it, its
start (at least 4 characters). An id that starts several events is refused
(exit 2) and they are listed; one that names none is an error (exit 1).
--json prints the event with the keys of meta log --json.`,
		Example: `  meta show 01JD6M4S2ZC8`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			var ev *metav1.Event
			if err := e.answer(cmd.Context(), s, func() (err error) { ev, err = s.Event(args[0]); return err }); err != nil {
				return err
			}
			views, err := s.Views(cmd.Context(), []*metav1.Event{ev})
			if err != nil {
				return err
			}
			return writeEvent(e.stdout, views[0], ev, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the event as JSON (keys as meta log --json)")
	return cmd
}

// writeEvent prints one event whole: as "key: value" lines, or as the JSON
// object meta log --json prints for it (v, its view). meta show and meta
// cat print with it; cat, which reads a file outside any log, knows no
// signature.
func writeEvent(w io.Writer, v record.View, ev *metav1.Event, asJSON bool) error {
	if asJSON {
		return writeJSON(w, v)
	}
	var text strings.Builder
	if err := record.WriteText(&text, ev); err != nil {
		return err
	}
	if v.Signature != "" {
		fmt.Fprintf(&text, "signature: %s\n", signatureText(v.Signature, v.SignedBy))
	}
	_, err := io.WriteString(w, printableLines(text.String()))
	return err
}

// signatureText says a signature's state for people: "verified (alice)",
// "unsigned", "unknown key", "bad".
func signatureText(state, by string) string {
	if by != "" {
		return state + " (" + by + ")"
	}
	return strings.ReplaceAll(state, "_", " ")
}
