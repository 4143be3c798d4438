package pubsubtest

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// recorder is a Handler that keeps every message it gets and detects
// concurrent deliveries of one topic.
type recorder struct {
	mu        sync.Mutex
	msgs      []*pubsub.Message
	busy      map[string]bool // topics with a Handler call in progress
	violation string          // first contract violation seen
	hook      func(m *pubsub.Message)
}

func newRecorder() *recorder {
	return &recorder{busy: make(map[string]bool)}
}

// handle is the pubsub.Handler.
func (r *recorder) handle(m *pubsub.Message) {
	r.mu.Lock()
	if r.busy[m.Topic] && r.violation == "" {
		r.violation = fmt.Sprintf("two concurrent Handler calls for topic %q", m.Topic)
	}
	r.busy[m.Topic] = true
	hook := r.hook
	r.mu.Unlock()
	runtime.Gosched() // widen the window in which a concurrent call is seen
	if hook != nil {
		hook(m)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.busy[m.Topic] = false
	r.mu.Unlock()
}

// all returns the messages received so far.
func (r *recorder) all() []*pubsub.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pubsub.Message(nil), r.msgs...)
}

// topic returns the messages of topic received so far.
func (r *recorder) topic(topic string) []*pubsub.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*pubsub.Message
	for _, m := range r.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// count returns the number of messages of topic received so far.
func (r *recorder) count(topic string) int {
	return len(r.topic(topic))
}

// err returns the first contract violation seen, or "".
func (r *recorder) err() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.violation
}

// names returns the events of msgs.
func names(msgs []*pubsub.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Event)
	}
	return out
}
