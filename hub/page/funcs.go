package page

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"
)

// timeFormat is how the page writes a time: UTC to the minute, the same
// for every viewer wherever they are (the title and datetime carry the
// full RFC 3339 time).
const timeFormat = "2006-01-02 15:04 UTC"

// funcs are the templates' functions; now is the page's clock.
func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format(timeFormat)
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string { return ago(now().Sub(t)) },
		"left": func(t time.Time) string {
			d := t.Sub(now())
			if d <= 0 {
				return "expired"
			}
			return span(d) + " left"
		},
		"short":      short,
		"appURL":     appURL,
		"channelURL": channelURL,
		"refURL": func(ref string) string {
			// project/env/domain, as plans and channels name apps.
			parts := strings.SplitN(ref, "/", 3)
			if len(parts) != 3 {
				return "/apps/" + url.PathEscape(ref)
			}
			return appURL(parts[0], parts[1], parts[2])
		},
		// filterURL is the main page's URL with one filter set (or cleared,
		// for ""), the others kept: every filter link is shareable.
		"filterURL": func(f Filter, key, value string) string {
			q := f.values()
			if value == "" {
				q.Del(key)
			} else {
				q.Set(key, value)
			}
			if len(q) == 0 {
				return "/"
			}
			return "/?" + q.Encode()
		},
		"join": strings.Join,
		// dict makes a map of its key, value pairs, for a template that
		// takes more than one thing.
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
}

// values is the filter as a URL query, without what is unset.
func (f Filter) values() url.Values {
	q := url.Values{}
	for _, kv := range [][2]string{{"q", f.Q}, {"project", f.Project}, {"env", f.Env}, {"server", f.Server}, {"recipe", f.Recipe}, {"channel", f.Channel}, {"state", f.State}, {"changed", f.Changed}, {"sort", f.Sort}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	return q
}

// ago says how long ago d was, roughly: "just now", "5m ago", "3h ago",
// "2d ago"; a time ahead (a clock that runs ahead) is "in 5m".
func ago(d time.Duration) string {
	if d < 0 {
		return "in " + span(-d)
	}
	if d < time.Minute {
		return "just now"
	}
	return span(d) + " ago"
}

// span is a duration in its largest whole unit: 45s, 12m, 3h, 9d.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}
