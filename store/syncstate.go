package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
)

// syncState is what a clone remembers of its remote, in .git/meta/sync.json.
type syncState struct{ path string }

type syncTimes struct {
	// LastAttempt is when a fetch was last tried, for the read cooldown.
	LastAttempt time.Time `json:"last_attempt"`
	// LastSync is when a fetch and integration, or a push, last succeeded.
	LastSync time.Time `json:"last_sync"`
	// LastFailure is when a sync last failed, and Failure all it said.
	LastFailure time.Time `json:"last_failure,omitempty"`
	Failure     string    `json:"failure,omitempty"`
	// FailureFix is the command that gets past it (see failureFix).
	FailureFix string `json:"failure_fix,omitempty"`
}

func (s syncState) load() syncTimes {
	var t syncTimes
	if data, err := os.ReadFile(s.path); err == nil {
		json.Unmarshal(data, &t)
	}
	return t
}

// save keeps t. A state lost or not written only costs an extra fetch, so
// it is not synced.
func (s syncState) save(t syncTimes) {
	data, _ := json.Marshal(t)
	if os.MkdirAll(filepath.Dir(s.path), 0o755) == nil {
		atomicfile.WriteUnsynced(afero.NewOsFs(), s.path, data, 0o644)
	}
}

func (s syncState) attempted(at time.Time) {
	t := s.load()
	t.LastAttempt = at
	s.save(t)
}

func (s syncState) synced(at time.Time) {
	t := s.load()
	t.LastSync = at
	s.save(t)
}

func (s syncState) failed(at time.Time, err error) {
	t := s.load()
	t.LastFailure, t.Failure, t.FailureFix = at, err.Error(), failureFix(err)
	s.save(t)
}

// failureFix is what gets a clone past a failed sync: what the error
// names, or trying again.
func failureFix(err error) string {
	switch {
	case errors.Is(err, ErrUnrelated):
		return "meta sync --rejoin"
	case errors.Is(err, ErrBroken):
		return "meta repair"
	case errors.Is(err, ErrConflict):
		return "git stash -u (your uncommitted changes of the files named), then meta sync"
	}
	return "meta sync"
}

// staleness says how old the local view is, for warnings.
func staleness(last time.Time) string {
	if last.IsZero() {
		return "never synced"
	}
	d := time.Since(last)
	if d < time.Minute {
		return "last synced less than a minute ago"
	}
	// "3h12m", not "3h12m0s".
	return "last synced " + strings.TrimSuffix(d.Round(time.Minute).String(), "0s") + " ago"
}
