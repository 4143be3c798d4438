package pubsub

import (
	"errors"
	"testing"
)

// wantErr fails the test unless err wraps target and reads msg.
func wantErr(t *testing.T, what string, err, target error, msg string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want %v", what, err, target)
		return
	}
	if err.Error() != msg {
		t.Errorf("%s reads %q, want %q", what, err.Error(), msg)
	}
}

func nopHandler(*Message) {}

func TestLifecycleStates(t *testing.T) {
	l := NewLifecycle("xbroker: ")
	wantErr(t, "Check before Start", l.Check("publish", "t"), ErrNotStarted, `xbroker: publish "t": pubsub: broker not started`)
	wantErr(t, "Check of an empty topic", l.Check("publish", ""), ErrInvalidArgument, "xbroker: publish: empty topic: pubsub: invalid argument")
	if l.Started() || l.Closed() || l.ClosedError("publish", "t") != nil {
		t.Fatalf("new: Started %v, Closed %v, ClosedError %v", l.Started(), l.Closed(), l.ClosedError("publish", "t"))
	}

	ran := 0
	begin := func() error { ran++; return nil }
	wantErr(t, "Start(nil)", l.Start(nil, begin), ErrInvalidArgument, "xbroker: start: nil handler: pubsub: invalid argument")
	failed := errors.New("dial failed")
	if err := l.Start(nopHandler, func() error { return failed }); err != failed {
		t.Fatalf("Start with a failing begin = %v, want its error as it is", err)
	}
	wantErr(t, "Check after a failed Start", l.Check("subscribe", "t"), ErrNotStarted, `xbroker: subscribe "t": pubsub: broker not started`)
	if err := l.Start(nopHandler, begin); err != nil || ran != 1 {
		t.Fatalf("Start after a failed one = %v, begin ran %d times", err, ran)
	}
	if !l.Started() || l.Closed() || l.Check("subscribe", "t") != nil || l.ClosedError("subscribe", "t") != nil {
		t.Fatalf("started: Started %v, Closed %v, Check %v", l.Started(), l.Closed(), l.Check("subscribe", "t"))
	}
	wantErr(t, "second Start", l.Start(nopHandler, begin), ErrAlreadyStarted, "xbroker: start: pubsub: broker already started")

	if !l.Close() {
		t.Fatal("first Close after Start = false, want true: the adapter must stop what it started")
	}
	if l.Close() {
		t.Fatal("second Close = true, want false")
	}
	if l.Started() || !l.Closed() {
		t.Fatalf("closed: Started %v, Closed %v", l.Started(), l.Closed())
	}
	wantErr(t, "Check after Close", l.Check("history", "t"), ErrClosed, `xbroker: history "t": pubsub: closed`)
	wantErr(t, "ClosedError after Close", l.ClosedError("publish", "t"), ErrClosed, `xbroker: publish "t": pubsub: closed`)
	wantErr(t, "Start after Close", l.Start(nopHandler, begin), ErrClosed, "xbroker: start: pubsub: closed")
	if ran != 1 {
		t.Fatalf("begin ran %d times, want once", ran)
	}
}

func TestLifecycleCloseBeforeStart(t *testing.T) {
	l := NewLifecycle("xbroker: ")
	if l.Close() {
		t.Fatal("Close of a new Lifecycle = true, want false: nothing was started")
	}
	wantErr(t, "Check after Close", l.Check("publish", "t"), ErrClosed, `xbroker: publish "t": pubsub: closed`)
	ran := false
	wantErr(t, "Start after Close", l.Start(nopHandler, func() error { ran = true; return nil }), ErrClosed, "xbroker: start: pubsub: closed")
	if ran {
		t.Fatal("Start after Close ran begin")
	}
}

func TestLifecycleStarted(t *testing.T) {
	l := NewStartedLifecycle("xbroker: presence ")
	if err := l.Check("track", "t"); err != nil {
		t.Fatalf("Check = %v, want nil", err)
	}
	wantErr(t, "Check of an empty topic", l.Check("list", ""), ErrInvalidArgument, "xbroker: presence list: empty topic: pubsub: invalid argument")
	if !l.Close() || l.Close() {
		t.Fatal("Close: want true once, then false")
	}
	wantErr(t, "Check after Close", l.Check("track", "t"), ErrClosed, `xbroker: presence track "t": pubsub: closed`)
	wantErr(t, "ClosedError after Close", l.ClosedError("untrack", "t"), ErrClosed, `xbroker: presence untrack "t": pubsub: closed`)
}

// TestLifecycleCloseDuringStart checks that a Close called while begin
// runs waits for it: the Start succeeds, the Close stops what it started,
// and the Lifecycle ends closed (not started again behind Close's back).
func TestLifecycleCloseDuringStart(t *testing.T) {
	for range 100 {
		l := NewLifecycle("xbroker: ")
		entered, release := make(chan struct{}), make(chan struct{})
		started := make(chan error, 1)
		go func() {
			started <- l.Start(nopHandler, func() error {
				close(entered)
				<-release
				return nil
			})
		}()
		<-entered
		closing, closed := make(chan struct{}), make(chan bool, 1)
		go func() {
			close(closing)
			closed <- l.Close()
		}()
		<-closing
		close(release)
		if err := <-started; err != nil {
			t.Fatalf("Start = %v", err)
		}
		if !<-closed {
			t.Fatal("Close during Start = false, want true: what Start started is never stopped")
		}
		if !l.Closed() || l.Started() {
			t.Fatalf("after Start and Close: Closed %v, Started %v", l.Closed(), l.Started())
		}
	}
}
