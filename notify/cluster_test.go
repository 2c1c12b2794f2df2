package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

func streamReplicas(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(context.Background(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// Prepare keeps the stream and the followers' buckets on as many servers
// as asked, raises a stream made with fewer, never lowers one, and says
// plainly when the cluster cannot place the replicas, on a real
// three-server cluster and on a single server.
func TestPrepareReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := notifytest.NewCluster(t, 3, "")
	js := notifytest.JetStream(t, c.URL())

	steps := []struct {
		replicas int
		want     int  // the stream's replicas after
		place    bool // Prepare fails with ErrCannotPlace
	}{
		{1, 1, false},
		{3, 3, false}, // raised
		{0, 3, false}, // not lowered
		{1, 3, false},
		{5, 3, true}, // three servers cannot keep five copies
	}
	for _, s := range steps {
		err := Prepare(ctx, js, s.replicas)
		if s.place != errors.Is(err, ErrCannotPlace) || (!s.place && err != nil) {
			t.Fatalf("Prepare(%d): %v, want ErrCannotPlace %v", s.replicas, err, s.place)
		}
		if got := streamReplicas(t, js); got != s.want {
			t.Fatalf("after Prepare(%d) the stream has %d replicas, want %d", s.replicas, got, s.want)
		}
	}
	for _, b := range []string{LeaseBucket, ParkedBucket} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := kv.Status(ctx)
		if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas, want 3", b, r)
		}
	}

	single := notifytest.JetStream(t, notifytest.Server(t).ClientURL())
	if err := Prepare(ctx, single, 3); !errors.Is(err, ErrCannotPlace) {
		t.Fatalf("Prepare(3) on one server: %v, want ErrCannotPlace", err)
	} else {
		t.Logf("one server: %v", err)
	}
}
