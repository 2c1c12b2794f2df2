package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
)

// The state of a stopped rollout is kept in the clone, beside the open
// batch (store.MetaDir), as rollout.json: it is this clone's work in
// progress, like the batch, not a record of the log. It lives here rather
// than in store because only the rollout reads and writes it: the store
// has no rule that depends on it (the batch, by contrast, is stamped on
// every event the store appends, so its file is the store's).
const stateFile = "rollout.json"

// State is a stopped rollout, as `meta rollout --resume` finds it.
type State struct {
	Channel string    `json:"channel"` // recipe/channel
	Version string    `json:"version"` // the channel's release the rollout brings apps to
	Started time.Time `json:"started"`
	// Operator started it.
	Operator string `json:"operator"`
	// BatchID is the batch the rollout's events join; OwnBatch says the
	// rollout opened it, and ends it when done.
	BatchID  string `json:"batch_id"`
	OwnBatch bool   `json:"own_batch"`
	// The plan's options, kept for the resume.
	EnvOrder []string      `json:"env_order"`
	WaveSize int           `json:"wave_size"`
	Pause    time.Duration `json:"pause_ns"`
	// StoppedAt is the app (project/env/domain) the rollout stopped at,
	// "" when it stopped between apps (a failed sync, the channel moved);
	// Reason says why.
	StoppedAt string `json:"stopped_at"`
	Reason    string `json:"reason"`
	// Waves counts the waves run so far; Ran are they.
	Waves int         `json:"waves"`
	Ran   []plan.Wave `json:"ran"`
	// Done are the apps the rollout moved, and Skipped those a resume
	// left out.
	Done    []Moved  `json:"done"`
	Skipped []string `json:"skipped"`
}

// Moved is an app the rollout brought to the channel's release.
type Moved struct {
	App    string `json:"app"` // project/env/domain
	Action string `json:"action"`
	From   string `json:"from"`
	Wave   int    `json:"wave"`
}

func statePath(s *store.Store) string { return filepath.Join(s.MetaDir(), stateFile) }

// Pending returns the stopped rollout of the clone, nil when there is none.
func Pending(s *store.Store) (*State, error) {
	data, err := os.ReadFile(statePath(s))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the stopped rollout: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil || st.Channel == "" || st.Version == "" {
		return nil, fmt.Errorf("read the stopped rollout: %s is damaged; remove it to forget the rollout", statePath(s))
	}
	return &st, nil
}

func saveState(s *store.Store, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(afero.NewOsFs(), statePath(s), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("keep the stopped rollout: %w", err)
	}
	return nil
}

func clearState(s *store.Store) error {
	if err := os.Remove(statePath(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget the finished rollout: %w", err)
	}
	return nil
}
