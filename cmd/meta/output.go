package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	case "deploy-failed", "rolled-back", "paused":
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

// printable escapes what a terminal would act on or be fooled by: control
// characters (line breaks and tabs too, in a one-line cell) and the
// bidirectional controls, as \x1b or \u202e. Whatever a record, a file name
// or git says reaches a person's terminal through it; JSON escapes by
// itself. meta refuses such characters in new events, but a log may hold
// older ones, or records committed by hand.
func printable(s string) string { return escape(s, false) }

// printableLines is printable that keeps line breaks and tabs: for
// messages of several lines.
func printableLines(s string) string { return escape(s, true) }

// message is printableLines for what follows "meta: error: " or "meta:
// warning: ": every line after the first is indented, so that nothing in
// it (a file name with a line break in it) can pass for a line of meta's
// own.
func message(s string) string {
	return strings.ReplaceAll(strings.TrimRight(printableLines(s), "\n"), "\n", "\n  ")
}

func escape(s string, lines bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unsafeRune(r, lines) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r, lines):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unsafeRune(r rune, lines bool) bool {
	if lines && (r == '\n' || r == '\t') {
		return false
	}
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// printableCopy is a copy of v, a head or an event's view, with every
// string in it made printable, for the text a person reads.
func printableCopy[T any](v T) T {
	data, err := json.Marshal(v)
	var out T
	if err != nil || json.Unmarshal(data, &out) != nil {
		return v
	}
	escapeStrings(reflect.ValueOf(&out).Elem())
	return out
}

func escapeStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(printable(v.String()))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			escapeStrings(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				escapeStrings(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			escapeStrings(v.Index(i))
		}
	}
}

// table lays text out in columns two spaces apart, as text/tabwriter
// would, but measures each cell as a person sees it: the colour a painter
// adds is not counted, so a coloured cell lines up with plain ones
// (tabwriter counts the escape bytes, and shifted coloured rows by 9
// columns). Cells are printable already: the only escape sequences in
// them are the painter's.
type table struct {
	w    io.Writer
	rows [][]string
}

func newTable(w io.Writer) *table { return &table{w: w} }

// row adds a row; rows may have different numbers of cells, and the last
// cell of a row is never padded.
func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

// flush writes the rows.
func (t *table) flush() error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r[:max(len(r)-1, 0)] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], visibleWidth(c))
		}
	}
	var b, line strings.Builder
	for _, r := range t.rows {
		line.Reset()
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-visibleWidth(c)+2))
			}
		}
		// Empty last cells leave no trailing blanks.
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	t.rows = nil
	_, err := io.WriteString(t.w, b.String())
	return err
}

// visibleWidth is how many columns s takes on a terminal: its runes, less
// the painter's colour sequences (ESC [ ... m).
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := strings.IndexByte(s[i:], 'm')
			if j > 0 {
				i += j + 1
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}
