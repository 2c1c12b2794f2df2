package store

import (
	"container/heap"
	"context"
	"fmt"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Since returns the events whose records the branch tip (sharedTip: the
// part of it the remote has) has and commit since did not (since "" means from the beginning), each app's in fold
// order and the apps interleaved by time, and the tip they were read at:
// what a hub that published up to since has yet to publish. They are read
// as reads take them (see read.go): a record as first written, none that
// history quarantined. A record that is no valid event is left out, its
// commit quarantined, and named in skipped: one bad record must not stop
// every later event from reaching followers.
func (s *Store) Since(ctx context.Context, since string) (events []*metav1.Event, tip string, skipped []string, err error) {
	if err := s.repairIfPending(); err != nil {
		return nil, "", nil, err
	}
	head, err := s.sharedTip(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	from := gitrepo.ZeroHash
	if since != "" {
		if !gitrepo.IsHash(since) {
			return nil, "", nil, fmt.Errorf("since: %q is not a commit id", since)
		}
		from = gitrepo.NewHash(since)
	}
	if from == head {
		return nil, head.String(), nil, nil
	}
	st, err := s.stateAt(head)
	if err != nil {
		return nil, "", nil, err
	}
	changes, err := s.repo.Added(ctx, from, head, projects.Root)
	if err != nil {
		return nil, "", nil, fmt.Errorf("since %s: %w", since, err)
	}
	var paths []string
	var blobs []gitrepo.Hash
	for _, ch := range changes {
		rec, err := projects.ParseRecordPath(ch.Path)
		if err != nil || !ch.From.IsZero() || ch.To.IsZero() {
			continue // not a new record
		}
		app := st.App(rec.Address)
		if app.Excluded[ch.Path] {
			skipped = append(skipped, ch.Path+": quarantined, not a valid event where it lies (meta quarantine ls)")
			continue
		}
		blob := ch.To
		if first, ok := app.Restored[ch.Path]; ok {
			blob = first // added, then changed: published as first written
		}
		paths = append(paths, ch.Path)
		blobs = append(blobs, blob)
	}
	byApp := map[projects.Address][]*metav1.Event{}
	type bad struct {
		path string
		blob gitrepo.Hash
		err  error
	}
	var bads []bad
	i := 0
	err = s.repo.Blobs(ctx, blobs, func(_ gitrepo.Hash, data []byte, err error) {
		p, blob := paths[i], blobs[i]
		i++
		var ev *metav1.Event
		if err == nil {
			ev, err = record.Unmarshal(data)
		}
		if err == nil {
			err = record.CheckPath(ev, p)
		}
		if err != nil {
			bads = append(bads, bad{p, blob, err})
			return
		}
		addr := record.Address(ev)
		byApp[addr] = append(byApp[addr], ev)
	})
	if err != nil {
		return nil, "", nil, err
	}
	for _, b := range bads {
		s.reject(head, b.path, b.blob, b.err)
		skipped = append(skipped, fmt.Sprintf("%s: %v", b.path, b.err))
	}
	// Merge the apps' fold-ordered lists by their next event's time, so
	// each app keeps its order and apps interleave as they happened.
	lists := make(eventLists, 0, len(byApp))
	for _, evs := range byApp {
		lists = append(lists, fold.Order(evs))
	}
	heap.Init(&lists)
	for lists.Len() > 0 {
		events = append(events, lists[0][0])
		if lists[0] = lists[0][1:]; len(lists[0]) == 0 {
			heap.Pop(&lists)
		} else {
			heap.Fix(&lists, 0)
		}
	}
	return events, head.String(), skipped, nil
}

// sharedTip is the newest commit of the branch that the remote has too,
// as this clone last saw it (the branch tip, for a log without a remote or
// with nothing fetched yet). Since reads up to it, and a hub publishes up
// to it and keeps it in a bucket (how far it published, how far each
// webhook got) that another hub of the log reads: a commit only this
// clone has (committed, its push refused) would be one the other hub can
// never read from, for good once this one dies with it, and its events
// would reach followers though the log may never hold them.
func (s *Store) sharedTip(ctx context.Context) (gitrepo.Hash, error) {
	head, err := s.repo.Head()
	if err != nil {
		return head, err
	}
	remote, err := s.repo.RemoteTip()
	if err != nil || remote.IsZero() || remote == head {
		return head, nil
	}
	if base, ok := s.repo.LinearMergeBase(head, remote); ok {
		return base, nil
	}
	base, err := s.repo.MergeBase(ctx, head, remote)
	if err != nil || base.IsZero() {
		return head, nil
	}
	return base, nil
}

// eventLists is a heap of non-empty event lists by their first event.
type eventLists [][]*metav1.Event

func (l eventLists) Len() int           { return len(l) }
func (l eventLists) Less(i, j int) bool { return fold.Before(l[i][0], l[j][0]) }
func (l eventLists) Swap(i, j int)      { l[i], l[j] = l[j], l[i] }
func (l *eventLists) Push(x any)        { *l = append(*l, x.([]*metav1.Event)) }
func (l *eventLists) Pop() any {
	old := *l
	x := old[len(old)-1]
	*l = old[:len(old)-1]
	return x
}
