package natsbroker

import (
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// TestHistoryWaveSharesOneRead sends a wave of History calls for one topic
// at once, as a node does when hundreds of clients join after a restart:
// they must share reads of the newest record instead of queueing for one
// round trip each (in CI, a wave of 125 joins per topic on a loaded machine
// ran out of time that way), and every call must see the same stream.
func TestHistoryWaveSharesOneRead(t *testing.T) {
	b, _ := startBroker(t, testOptions(t))
	const calls = 300
	if _, err := b.Publish(bg, &pubsub.Message{Topic: "wave", Event: "first"}, pubsub.PublishOptions{HistorySize: 10}); err != nil {
		t.Fatal(err)
	}
	before := b.c.lastReads.Load()
	start := make(chan struct{})
	results := make([]pubsub.HistoryResult, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			results[i], errs[i] = b.History(bg, "wave", pubsub.HistoryOptions{Limit: 1, TTL: time.Hour})
		})
	}
	close(start)
	wg.Wait()
	reads := b.c.lastReads.Load() - before
	for i := range calls {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if results[i].Latest != results[0].Latest || len(results[i].Messages) != 1 || results[i].Messages[0].Event != "first" {
			t.Fatalf("call %d: latest %v, %d messages; call 0: latest %v", i, results[i].Latest, len(results[i].Messages), results[0].Latest)
		}
	}
	t.Logf("%d History calls, %d reads of the newest record", calls, reads)
	if reads > calls/10 {
		t.Fatalf("%d History calls made %d reads of the newest record: they queued instead of sharing", calls, reads)
	}
}

// TestHistorySharedReadSeesEarlierPublishes publishes on one node and
// reads history on another, from several goroutines at once: each read
// must show the publish that returned before it was asked for. A shared
// read that had begun before the publish (a batch joined too late) would
// show an older latest position.
func TestHistorySharedReadSeesEarlierPublishes(t *testing.T) {
	o := testOptions(t)
	a, _ := startBroker(t, o)
	b, _ := startBroker(t, o)
	const workers, rounds = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				pos, err := a.Publish(bg, &pubsub.Message{Topic: "rw", Event: "e"}, pubsub.PublishOptions{HistorySize: 100})
				if err != nil {
					errs <- err
					return
				}
				res, err := b.History(bg, "rw", pubsub.HistoryOptions{Limit: -1})
				if err != nil {
					errs <- err
					return
				}
				if res.Latest.Epoch != pos.Epoch || res.Latest.Seq < pos.Seq {
					errs <- &staleRead{published: pos, latest: res.Latest}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// staleRead is a History answer older than a publish that preceded it.
type staleRead struct{ published, latest pubsub.Position }

func (e *staleRead) Error() string {
	return "history latest " + e.latest.String() + " is older than the publish at " + e.published.String() + " that returned before the read"
}
