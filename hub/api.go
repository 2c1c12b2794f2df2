package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// NewHandler serves the log as JSON, with the keys of the CLI's --json:
//
//	GET /v1/apps                  every app's head (meta ls --json)
//	GET /v1/apps/{domain}         one app's head (meta head --json)
//	GET /v1/apps/{domain}/log?n=N its events, newest first (meta log --json, as an array)
//	GET /v1/quarantine            the quarantined commits (meta quarantine ls --all --json)
//	GET /v1/releases              every recipe's releases, each with the channels at it
//	GET /v1/releases/{recipe}     one recipe's (also /v1/releases?recipe=R)
//	GET /v1/channels              every channel, with its history (meta channel ls --json)
//	GET /v1/channels/{recipe}/{channel} one channel
//	GET /v1/plan?channel=R/C      the plan of every following app, or of one channel's (meta plan --json)
//	GET /healthz                  {"ok": true}
//
// Errors are {"error": "..."} with 400, 404 or 409 for what the caller
// asked wrong, 500 for the rest.
func NewHandler(s *store.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		heads, err := s.List()
		reports := make([]store.HeadReport, 0, len(heads))
		for _, h := range heads {
			if err == nil {
				var rep store.HeadReport
				rep, err = s.Report(r.Context(), h)
				reports = append(reports, rep)
			}
		}
		reply(w, reports, err)
	})
	mux.HandleFunc("GET /v1/apps/{domain}", func(w http.ResponseWriter, r *http.Request) {
		h, err := s.Head(r.PathValue("domain"))
		var rep store.HeadReport
		if err == nil {
			rep, err = s.Report(r.Context(), h)
		}
		reply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/quarantine", func(w http.ResponseWriter, r *http.Request) {
		qs, err := s.Quarantine(r.Context(), true)
		reply(w, qs, err)
	})
	mux.HandleFunc("GET /v1/apps/{domain}/log", func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if q := r.URL.Query().Get("n"); q != "" {
			var err error
			if n, err = strconv.Atoi(q); err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "n must be a whole number, 0 for all"})
				return
			}
		}
		events, err := s.Log(r.PathValue("domain"), n)
		var views []record.View
		if err == nil {
			views, err = s.Views(r.Context(), events)
		}
		reply(w, views, err)
	})
	mux.HandleFunc("GET /v1/releases", func(w http.ResponseWriter, r *http.Request) {
		rels, err := releases(s, r.URL.Query().Get("recipe"), r.URL.Query().Has("recipe"))
		reply(w, rels, err)
	})
	mux.HandleFunc("GET /v1/releases/{recipe}", func(w http.ResponseWriter, r *http.Request) {
		rels, err := releases(s, r.PathValue("recipe"), true)
		reply(w, rels, err)
	})
	mux.HandleFunc("GET /v1/channels", func(w http.ResponseWriter, r *http.Request) {
		var cs []*fold.Channel
		recipe := r.URL.Query().Get("recipe")
		err := knownRecipe(s, recipe, r.URL.Query().Has("recipe"))
		if err == nil {
			cs, err = s.Channels(recipe)
		}
		reply(w, cs, err)
	})
	mux.HandleFunc("GET /v1/channels/{recipe}/{channel}", func(w http.ResponseWriter, r *http.Request) {
		ref := projects.ChannelRef{Recipe: r.PathValue("recipe"), Channel: r.PathValue("channel")}
		var c *fold.Channel
		err := ref.Validate()
		if err == nil {
			c, err = s.Channel(ref)
		}
		reply(w, c, err)
	})
	mux.HandleFunc("GET /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		o, err := plan.ParseQuery(r.URL.Query(), time.Now())
		if err != nil {
			reply(w, nil, err)
			return
		}
		in, err := plan.FromStore(s)
		if err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, plan.Make(in, o), nil)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	return jsonErrors(mux, nil)
}

// Release is a recorded release as /v1/releases serves it: its recipe, the
// release as `meta release ls --json` shows it, and the channels that
// point at it now (names, sorted; [] for none). Its JSON keys are part of
// meta's interface: add keys, never rename or remove them.
type Release struct {
	Recipe string `json:"recipe"`
	fold.Release
	Channels []string `json:"channels"`
}

// releases lists the releases of recipe, or of every recipe when not
// named, in the order each recipe's were recorded. A named recipe must be
// a valid name (projects.ErrInvalidName) the log has logs of
// (store.ErrNotFound).
func releases(s *store.Store, recipe string, named bool) ([]Release, error) {
	if err := knownRecipe(s, recipe, named); err != nil {
		return nil, err
	}
	recipes := []string{recipe}
	if !named {
		var err error
		if recipes, err = s.Recipes(); err != nil {
			return nil, err
		}
	}
	out := []Release{}
	for _, name := range recipes {
		rels, err := s.Releases(name)
		if err != nil {
			return nil, err
		}
		channels, err := s.Channels(name)
		if err != nil {
			return nil, err
		}
		at := map[string][]string{}
		for _, c := range channels { // sorted by name
			if c.Version != "" {
				at[c.Version] = append(at[c.Version], c.Channel)
			}
		}
		for _, r := range rels {
			out = append(out, Release{Recipe: name, Release: r, Channels: append([]string{}, at[r.Version]...)})
		}
	}
	return out, nil
}

// knownRecipe checks a recipe a caller named: a valid name the log has
// logs of. Not named, every recipe is meant, and there is nothing to check.
func knownRecipe(s *store.Store, recipe string, named bool) error {
	if !named {
		return nil
	}
	if err := projects.ValidateRecipe(recipe); err != nil {
		return err
	}
	recipes, err := s.Recipes()
	if err != nil {
		return err
	}
	if !slices.Contains(recipes, recipe) {
		return fmt.Errorf("recipe %s: %w (no releases or channels recorded)", recipe, store.ErrNotFound)
	}
	return nil
}

// jsonErrors serves mux, but answers what mux has no route for (404, or
// 405 with Allow) as JSON, the shape of every other error, instead of
// ServeMux's plain text. A path that is not the API's (/v1/, /healthz,
// /hooks/) and that mux has no route for goes to pages, when not nil.
func jsonErrors(mux *http.ServeMux, pages http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if p := r.URL.Path; pages != nil && p != "/v1" && p != "/healthz" && !strings.HasPrefix(p, "/v1/") && !strings.HasPrefix(p, "/hooks/") {
			if _, pattern := mux.Handler(&http.Request{Method: http.MethodPost, URL: r.URL, Host: r.Host}); pattern == "" {
				pages.ServeHTTP(w, r)
				return
			}
		}
		// No route: h is ServeMux's own answer, a 404, a 405 or a redirect
		// to the cleaned path. Keep its status and headers, not its text.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeJSON(w, rec.status, map[string]string{"error": fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeJSON(w, rec.status, map[string]string{"error": fmt.Sprintf("%s does not take %s, only %s", r.URL.Path, r.Method, allow)})
		default:
			maps.Copy(w.Header(), rec.header)
			w.WriteHeader(rec.status)
		}
	})
}

// statusRecorder keeps a response's status and headers, and drops its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, projects.ErrInvalidName), errors.Is(err, plan.ErrBadQuery):
		status = http.StatusBadRequest
	case errors.Is(err, store.ErrAmbiguous):
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
