package record

import "testing"

func TestCountSaysOneOfAThing(t *testing.T) {
	for _, tt := range []struct {
		n    int
		noun string
		want string
	}{{0, "event", "0 events"}, {1, "event", "1 event"}, {2, "commit", "2 commits"}, {1, "env file", "1 env file"},
		{2, "batch", "2 batches"}, {1, "batch", "1 batch"}, {3, "quarantined commit", "3 quarantined commits"}} {
		if got := Count(tt.n, tt.noun); got != tt.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}
