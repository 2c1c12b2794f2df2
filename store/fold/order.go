// Package fold derives an app's current state, its head, from its events.
//
// Every machine holding the same events computes the same head: the events
// are put in one order that depends only on the events themselves (parents
// before children, ties broken by time, then id) and folded left to right.
package fold

import (
	"container/heap"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Order sorts one app's events so that every event comes after the parents
// it names, and events with no order between them come earliest time first,
// then smallest id first. Parents that are not among events are ignored.
// Events caught in a parent cycle, which only a hand-made record can cause,
// come last, by time and id. Duplicate ids keep their first occurrence.
func Order(events []*metav1.Event) []*metav1.Event {
	byID := make(map[string]*metav1.Event, len(events))
	unique := make([]*metav1.Event, 0, len(events))
	for _, ev := range events {
		if _, dup := byID[ev.GetId()]; dup {
			continue
		}
		byID[ev.GetId()] = ev
		unique = append(unique, ev)
	}
	// waiting counts each event's parents not yet placed; children lists
	// whom to tell when a parent is placed.
	waiting := make(map[string]int, len(unique))
	children := make(map[string][]*metav1.Event, len(unique))
	ready := &queue{}
	for _, ev := range unique {
		n := 0
		for _, p := range distinct(ev.GetParents()) {
			if _, known := byID[p]; known && p != ev.GetId() {
				n++
				children[p] = append(children[p], ev)
			}
		}
		waiting[ev.GetId()] = n
		if n == 0 {
			heap.Push(ready, ev)
		}
	}
	out := make([]*metav1.Event, 0, len(unique))
	placed := make(map[string]bool, len(unique))
	for ready.Len() > 0 {
		ev := heap.Pop(ready).(*metav1.Event)
		out = append(out, ev)
		placed[ev.GetId()] = true
		for _, c := range children[ev.GetId()] {
			waiting[c.GetId()]--
			if waiting[c.GetId()] == 0 {
				heap.Push(ready, c)
			}
		}
	}
	if len(out) < len(unique) {
		rest := &queue{}
		for _, ev := range unique {
			if !placed[ev.GetId()] {
				heap.Push(rest, ev)
			}
		}
		for rest.Len() > 0 {
			out = append(out, heap.Pop(rest).(*metav1.Event))
		}
	}
	return out
}

// Before is the tie-break between events with no parent order between them.
func Before(a, b *metav1.Event) bool {
	ta, tb := a.GetTime().AsTime(), b.GetTime().AsTime()
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.GetId() < b.GetId()
}

func distinct(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// queue is a min-heap of events by Before.
type queue []*metav1.Event

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return Before(q[i], q[j]) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(*metav1.Event)) }
func (q *queue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	*q = old[:len(old)-1]
	return ev
}
