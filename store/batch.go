package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"github.com/spf13/afero"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Errors of batches.
var (
	// ErrBatchOpen: a batch is already open in this clone.
	ErrBatchOpen = errors.New("a batch is open")
	// ErrNoBatch: no batch is open in this clone.
	ErrNoBatch = errors.New("no batch is open")
)

// Batch groups the events one operator appends for one piece of work
// ("Deployed apps for organisation X"). It is open in one clone, from
// `meta batch start` to `meta batch end`; every event appended there
// meanwhile carries its id and summary, so the log shows the group on
// every machine.
type Batch struct {
	ID       string    `json:"id"`
	Summary  string    `json:"summary"`
	Started  time.Time `json:"started"`
	Operator string    `json:"operator"`
}

func (s *Store) batchPath() string { return filepath.Join(s.gitDir, "meta", "batch.json") }

// OpenBatch returns the batch open in this clone, if any.
func (s *Store) OpenBatch() (Batch, bool, error) {
	data, err := os.ReadFile(s.batchPath())
	if errors.Is(err, os.ErrNotExist) {
		return Batch{}, false, nil
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("read open batch: %w", err)
	}
	var b Batch
	if err := json.Unmarshal(data, &b); err != nil || b.ID == "" {
		return Batch{}, false, fmt.Errorf("read open batch: %s is damaged; remove it to close the batch", s.batchPath())
	}
	return b, true, nil
}

// StartBatch opens a batch in this clone. Only one is open at a time.
func (s *Store) StartBatch(summary string, actor *metav1.Actor, now time.Time) (Batch, error) {
	summary = oneLine(summary)
	if summary == "" {
		return Batch{}, fmt.Errorf("start batch: %w: a batch needs a summary (-m)", record.ErrInvalid)
	}
	// Every event of the batch carries the summary: check it as they will.
	if err := record.Validate(probeEvent(summary)); err != nil {
		return Batch{}, fmt.Errorf("start batch: %w", err)
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return Batch{}, err
	}
	defer release()
	if b, open, err := s.OpenBatch(); err != nil {
		return Batch{}, err
	} else if open {
		return Batch{}, fmt.Errorf("start batch: %w: %s (%q, started %s); `meta batch end` closes it", ErrBatchOpen, b.ID, b.Summary, b.Started.Local().Format("2006-01-02 15:04"))
	}
	b := Batch{ID: record.NewID(now), Summary: summary, Started: now.UTC(), Operator: record.Operator(actor.GetName(), actor.GetEmail())}
	data, _ := json.Marshal(b)
	if err := atomicfile.Write(afero.NewOsFs(), s.batchPath(), data, 0o644); err != nil {
		return Batch{}, fmt.Errorf("start batch: %w", err)
	}
	return b, nil
}

// EndBatch closes the batch open in this clone and returns it.
func (s *Store) EndBatch() (Batch, error) {
	release, err := lock(s.gitDir)
	if err != nil {
		return Batch{}, err
	}
	defer release()
	b, open, err := s.OpenBatch()
	if err != nil {
		return Batch{}, err
	}
	if !open {
		return Batch{}, fmt.Errorf("end batch: %w in this clone", ErrNoBatch)
	}
	if err := os.Remove(s.batchPath()); err != nil {
		return Batch{}, fmt.Errorf("end batch: %w", err)
	}
	return b, nil
}

// currentBatch is the batch open in this clone, or nil.
func (s *Store) currentBatch() *Batch {
	if b, open, _ := s.OpenBatch(); open {
		return &b
	}
	return nil
}

// mark puts ev into batch b, if there is one and the caller chose none.
func (b *Batch) mark(ev *metav1.Event) {
	if b != nil && ev.GetBatchId() == "" {
		ev.BatchId, ev.BatchSummary = b.ID, b.Summary
	}
}

// BatchEvents are the events of batch id across the whole log, oldest
// first.
func (s *Store) BatchEvents(id string) ([]*metav1.Event, error) {
	all, err := s.Log("", 0)
	if err != nil {
		return nil, err
	}
	var out []*metav1.Event
	for i := len(all) - 1; i >= 0; i-- {
		if strings.EqualFold(all[i].GetBatchId(), id) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// probeEvent is a valid event carrying summary, to check it by the rules
// every event of the batch will be checked by.
func probeEvent(summary string) *metav1.Event {
	id := record.NewID(time.Now())
	at, _ := record.IDTime(id)
	return &metav1.Event{
		Format: record.FormatVersion, Id: id, Time: timestamppb.New(at),
		Actor:   &metav1.Actor{Name: "meta"},
		Address: &metav1.Address{Project: "p", Env: "e", App: "a.example.com"},
		Kind:    metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		BatchId: id, BatchSummary: summary,
	}
}
