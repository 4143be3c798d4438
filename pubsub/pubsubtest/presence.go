package pubsubtest

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// NewPresence returns a new PresenceManager. It may register cleanups with
// t.Cleanup; the suite closes the manager itself.
type NewPresence func(t *testing.T) pubsub.PresenceManager

// RunPresence runs the PresenceManager conformance tests as subtests of t,
// each on a fresh manager made by newPresence.
func RunPresence(t *testing.T, newPresence NewPresence) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, newPresence NewPresence)
	}{
		{"TrackUntrackList", testPresenceTrack},
		{"CopiesMeta", testPresenceCopiesMeta},
		{"Errors", testPresenceErrors},
		{"Concurrent", testPresenceConcurrent},
		{"CloseStopsGoroutines", testPresenceGoroutines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newPresence) })
	}
}

// presence returns a manager of newPresence closed when the test ends.
func presence(t *testing.T, newPresence NewPresence) pubsub.PresenceManager {
	t.Helper()
	p := newPresence(t)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// presenceString renders entries sorted by id, for comparison.
func presenceString(es []pubsub.PresenceEntry) string {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b pubsub.PresenceEntry) int { return strings.Compare(a.ID, b.ID) })
	var s strings.Builder
	for _, e := range es {
		fmt.Fprintf(&s, "[%s %s %s %s]", e.ID, e.Key, e.Meta, e.Node)
	}
	return s.String()
}

// mustList lists topic on p.
func mustList(t *testing.T, p pubsub.PresenceManager, topic string) []pubsub.PresenceEntry {
	t.Helper()
	es, err := p.List(bg(t), topic)
	if err != nil {
		t.Fatalf("List(%s): %v", topic, err)
	}
	return es
}

func testPresenceTrack(t *testing.T, newPresence NewPresence) {
	p := presence(t, newPresence)
	type step struct {
		op    string // "track", "untrack" or "list"
		topic string
		entry pubsub.PresenceEntry // for track; ID for untrack
		want  string               // for list, sorted by id
	}
	steps := []step{
		{op: "list", topic: "room:a", want: ""},
		{op: "track", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{"s":1}`), Node: "n1"}},
		{op: "track", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r2", Key: "bob", Meta: []byte(`{}`), Node: "n1"}},
		{op: "track", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r3", Key: "alice", Meta: []byte(`{"s":3}`), Node: "n2"}},
		{op: "track", topic: "room:b", entry: pubsub.PresenceEntry{ID: "r1", Key: "carol", Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":1} n1][r2 bob {} n1][r3 alice {"s":3} n2]`},
		{op: "list", topic: "room:b", want: `[r1 carol  n1]`},
		// An update replaces the entry.
		{op: "track", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{"s":"away"}`), Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r2 bob {} n1][r3 alice {"s":3} n2]`},
		{op: "untrack", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r2"}},
		{op: "untrack", topic: "room:a", entry: pubsub.PresenceEntry{ID: "unknown"}},
		{op: "untrack", topic: "room:none", entry: pubsub.PresenceEntry{ID: "r1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r3 alice {"s":3} n2]`},
		{op: "track", topic: "room:a", entry: pubsub.PresenceEntry{ID: "r2", Key: "bob", Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r2 bob  n1][r3 alice {"s":3} n2]`},
		{op: "untrack", topic: "room:b", entry: pubsub.PresenceEntry{ID: "r1"}},
		{op: "list", topic: "room:b", want: ""},
		// Unusual but valid ids, keys and metadata survive.
		{op: "track", topic: "room:ü 🙂", entry: pubsub.PresenceEntry{ID: "id with spaces:1", Key: "", Meta: []byte("\x00\xff"), Node: ""}},
		{op: "list", topic: "room:ü 🙂", want: "[id with spaces:1  \x00\xff ]"},
	}
	for i, s := range steps {
		var err error
		switch s.op {
		case "track":
			err = p.Track(bg(t), s.topic, s.entry)
		case "untrack":
			err = p.Untrack(bg(t), s.topic, s.entry.ID)
		case "list":
			var es []pubsub.PresenceEntry
			es, err = p.List(bg(t), s.topic)
			if got := presenceString(es); got != s.want {
				t.Errorf("step %d: List(%s) = %s, want %s", i, s.topic, got, s.want)
			}
			if s.want == "" && es != nil {
				t.Errorf("step %d: List(%s) = %#v, want nil", i, s.topic, es)
			}
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
	}
}

func testPresenceCopiesMeta(t *testing.T, newPresence NewPresence) {
	p := presence(t, newPresence)
	meta := []byte(`{"a":1}`)
	if err := p.Track(bg(t), "t", pubsub.PresenceEntry{ID: "r", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	meta[2] = 'b'
	es := mustList(t, p, "t")
	if len(es) != 1 || string(es[0].Meta) != `{"a":1}` {
		t.Errorf("List = %s", presenceString(es))
	}
}

func testPresenceErrors(t *testing.T, newPresence NewPresence) {
	p := newPresence(t)
	ctx := bg(t)
	invalid := []struct {
		name string
		err  error
	}{
		{"track empty topic", p.Track(ctx, "", pubsub.PresenceEntry{ID: "r"})},
		{"track empty id", p.Track(ctx, "t", pubsub.PresenceEntry{Key: "k"})},
		{"untrack empty topic", p.Untrack(ctx, "", "r")},
		{"untrack empty id", p.Untrack(ctx, "t", "")},
		{"list empty topic", func() error { _, err := p.List(ctx, ""); return err }()},
	}
	for _, c := range invalid {
		if !errors.Is(c.err, pubsub.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
	if err := p.Track(ctx, "t", pubsub.PresenceEntry{ID: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	closed := []struct {
		name string
		err  error
	}{
		{"track", p.Track(ctx, "t", pubsub.PresenceEntry{ID: "r"})},
		{"untrack", p.Untrack(ctx, "t", "r")},
		{"list", func() error { _, err := p.List(ctx, "t"); return err }()},
	}
	for _, c := range closed {
		if !errors.Is(c.err, pubsub.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, c.err)
		}
	}
}

func testPresenceConcurrent(t *testing.T, newPresence NewPresence) {
	p := presence(t, newPresence)
	const workers, per = 4, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				topic := fmt.Sprintf("t%d", i%5)
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := p.Track(bg(t), topic, pubsub.PresenceEntry{ID: id, Key: "k"}); err != nil {
					t.Error(err)
				}
				if _, err := p.List(bg(t), topic); err != nil {
					t.Error(err)
				}
				if i%2 == 0 {
					if err := p.Untrack(bg(t), topic, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for i := range 5 {
		total += len(mustList(t, p, fmt.Sprintf("t%d", i)))
	}
	if total != workers*per/2 {
		t.Errorf("%d entries left, want %d", total, workers*per/2)
	}
}

func testPresenceGoroutines(t *testing.T, newPresence NewPresence) {
	before := runtime.NumGoroutine()
	p := newPresence(t)
	if ex, ok := p.(pubsub.PresenceExpirer); ok {
		ex.OnExpire(func(string, pubsub.PresenceEntry) {})
	}
	if err := p.Track(bg(t), "t", pubsub.PresenceEntry{ID: "r", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	mustList(t, p, "t")
	if err := p.Untrack(bg(t), "t", "r"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkGoroutines(t, before)
}
