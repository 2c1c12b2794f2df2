package main

import (
	"encoding/json"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal, for colour and progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// painter colours words for a terminal, and does nothing when output is not
// a terminal or NO_COLOR is set (https://no-color.org).
type painter struct{ on bool }

func (e *env) painter(w io.Writer) painter {
	return painter{on: isTerminal(w) && e.getenv("NO_COLOR") == ""}
}

func (p painter) paint(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// state colours an app state: green when running as recorded, red when the
// last deploy failed, yellow otherwise.
func (p painter) state(s string) string {
	switch s {
	case "deployed":
		return p.paint("32", s)
	case "deploy-failed":
		return p.paint("31", s)
	}
	return p.paint("33", s)
}

// when formats a time for people, in UTC so operators in different zones
// read the same thing.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago says how long ago t was, roughly.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return itoa(int(d.Hours())) + "h ago"
	}
	return itoa(int(d.Hours()/24)) + "d ago"
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
