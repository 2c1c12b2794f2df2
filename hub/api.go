package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// NewHandler serves the log as JSON, with the keys of the CLI's --json:
//
//	GET /v1/apps                  every app's head (meta ls --json)
//	GET /v1/apps/{domain}         one app's head (meta head --json)
//	GET /v1/apps/{domain}/log?n=N its events, newest first (meta log --json, as an array)
//	GET /v1/quarantine            the quarantined commits (meta quarantine ls --all --json)
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	return jsonErrors(mux)
}

// jsonErrors serves mux, but answers what mux has no route for (404, or
// 405 with Allow) as JSON, the shape of every other error, instead of
// ServeMux's plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
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
	case errors.Is(err, projects.ErrInvalidName):
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
