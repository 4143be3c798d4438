package pubsubtest

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

func testClose(t *testing.T, newBroker NewBroker) {
	b := newBroker(t)
	var active, calls atomic.Int32
	entered := make(chan struct{}, 1)
	if err := b.Start(func(m *pubsub.Message) {
		active.Add(1)
		calls.Add(1)
		if m.Event == "block" {
			select {
			case entered <- struct{}{}:
			default:
			}
			time.Sleep(50 * time.Millisecond)
		}
		active.Add(-1)
	}); err != nil {
		t.Fatal(err)
	}
	mustSubscribe(t, b, "t")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// In-process brokers deliver inside Publish.
		_, _ = b.Publish(bg(t), &pubsub.Message{Topic: "t", Event: "block"}, pubsub.PublishOptions{HistorySize: 1})
	})
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("message not delivered")
	}
	// Keep publishing while closing: nothing may reach the Handler once
	// Close has returned.
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := b.Publish(bg(t), &pubsub.Message{Topic: "t", Event: "more"}, pubsub.PublishOptions{}); err != nil {
				if !errors.Is(err, pubsub.ErrClosed) {
					t.Errorf("Publish during Close: %v, want nil or ErrClosed", err)
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := active.Load(); n != 0 {
		t.Errorf("Close returned during %d Handler calls", n)
	}
	n := calls.Load()
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := bg(t)
	errs := []struct {
		name string
		err  error
	}{
		{"start", b.Start(func(*pubsub.Message) {})},
		{"subscribe", b.Subscribe(ctx, "t")},
		{"unsubscribe", b.Unsubscribe(ctx, "t")},
		{"publish", func() error {
			_, err := b.Publish(ctx, &pubsub.Message{Topic: "t"}, pubsub.PublishOptions{})
			return err
		}()},
		{"history", func() error { _, err := b.History(ctx, "t", pubsub.HistoryOptions{}); return err }()},
	}
	for _, e := range errs {
		if !errors.Is(e.err, pubsub.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", e.name, e.err)
		}
	}
	close(stop)
	quiet()
	if got := calls.Load(); got != n {
		t.Errorf("Handler called %d more times after Close returned", got-n)
	}
}

func testCloseBeforeStart(t *testing.T, newBroker NewBroker) {
	b := newBroker(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(*pubsub.Message) {}); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testCloseStopsGoroutines(t *testing.T, newBroker NewBroker) {
	before := runtime.NumGoroutine()
	b, _ := started(t, newBroker)
	mustSubscribe(t, b, "t")
	mustSubscribe(t, b, "u")
	mustPublish(t, b, "t", "e", pubsub.PublishOptions{HistorySize: 2, HistoryTTL: time.Minute})
	mustHistory(t, b, "t", pubsub.HistoryOptions{})
	mustUnsubscribe(t, b, "t")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	checkGoroutines(t, before)
}

// checkGoroutines waits until at most before goroutines run.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
