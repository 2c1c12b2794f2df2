package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
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

func (s *Store) batchPath() string { return s.metaPath("batch.json") }

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

// BatchEvents returns the whole id of the batch id names (the whole id or
// its start, see Prefix; "" names the last batch: the one started last,
// open in this clone or not) and its events across the whole log, oldest
// first. An open batch may have none yet.
func (s *Store) BatchEvents(id string) (string, []*metav1.Event, error) {
	all, err := s.Log("", 0)
	if err != nil {
		return "", nil, err
	}
	type batch struct {
		id, summary string
		events      int
	}
	var batches []batch
	seen := map[string]int{}
	add := func(id, summary string, events int) {
		if i, ok := seen[id]; ok {
			batches[i].events += events
			return
		}
		seen[id] = len(batches)
		batches = append(batches, batch{id, summary, events})
	}
	if b, open, err := s.OpenBatch(); err != nil {
		return "", nil, err
	} else if open {
		add(b.ID, b.Summary, 0)
	}
	for _, ev := range all {
		if ev.GetBatchId() != "" {
			add(ev.GetBatchId(), ev.GetBatchSummary(), 1)
		}
	}
	var b batch
	switch {
	case id != "":
		b, err = Prefix[batch]{
			What:   "batch",
			Digits: ulidDigits,
			Len:    projects.IDLen,
			ID:     func(b batch) string { return b.id },
			Describe: func(b batch) string {
				return fmt.Sprintf("%q  %s", b.summary, record.Count(b.events, "event"))
			},
			Missing: func(id string) error {
				return fmt.Errorf("%w in batch %s (`meta log` shows the batches)", ErrNotFound, id)
			},
		}.Find(id, batches)
		if err != nil {
			return "", nil, err
		}
	case len(batches) == 0:
		return "", nil, fmt.Errorf("%w in any batch: `meta batch start -m SUMMARY` opens one", ErrNotFound)
	default:
		// Batch ids are ULIDs: the greatest was made last.
		b = slices.MaxFunc(batches, func(x, y batch) int { return strings.Compare(x.id, y.id) })
	}
	var out []*metav1.Event
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].GetBatchId() == b.id {
			out = append(out, all[i])
		}
	}
	return b.id, out, nil
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
