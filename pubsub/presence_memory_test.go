package pubsub

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// presenceString renders entries compactly for comparison.
func presenceString(es []PresenceEntry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("[%s %s %s %s]", e.ID, e.Key, e.Meta, e.Node)
	}
	return s
}

func TestMemoryPresence(t *testing.T) {
	p := NewMemoryPresence()
	defer p.Close()
	type step struct {
		op    string // "track", "untrack" or "list"
		topic string
		entry PresenceEntry // for track; ID for untrack
		want  string        // for list
	}
	steps := []step{
		{op: "list", topic: "room:a", want: ""},
		{op: "track", topic: "room:a", entry: PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{"s":1}`), Node: "n1"}},
		{op: "track", topic: "room:a", entry: PresenceEntry{ID: "r2", Key: "bob", Meta: []byte(`{}`), Node: "n1"}},
		{op: "track", topic: "room:a", entry: PresenceEntry{ID: "r3", Key: "alice", Meta: []byte(`{"s":3}`), Node: "n2"}},
		{op: "track", topic: "room:b", entry: PresenceEntry{ID: "r1", Key: "carol", Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":1} n1][r2 bob {} n1][r3 alice {"s":3} n2]`},
		{op: "list", topic: "room:b", want: `[r1 carol  n1]`},
		// Update keeps the entry's place.
		{op: "track", topic: "room:a", entry: PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{"s":"away"}`), Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r2 bob {} n1][r3 alice {"s":3} n2]`},
		{op: "untrack", topic: "room:a", entry: PresenceEntry{ID: "r2"}},
		{op: "untrack", topic: "room:a", entry: PresenceEntry{ID: "unknown"}},
		{op: "untrack", topic: "room:none", entry: PresenceEntry{ID: "r1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r3 alice {"s":3} n2]`},
		{op: "track", topic: "room:a", entry: PresenceEntry{ID: "r2", Key: "bob", Node: "n1"}},
		{op: "list", topic: "room:a", want: `[r1 alice {"s":"away"} n1][r3 alice {"s":3} n2][r2 bob  n1]`},
		{op: "untrack", topic: "room:b", entry: PresenceEntry{ID: "r1"}},
		{op: "list", topic: "room:b", want: ""},
	}
	for i, s := range steps {
		var err error
		switch s.op {
		case "track":
			err = p.Track(ctx, s.topic, s.entry)
		case "untrack":
			err = p.Untrack(ctx, s.topic, s.entry.ID)
		case "list":
			var es []PresenceEntry
			es, err = p.List(ctx, s.topic)
			if got := presenceString(es); got != s.want {
				t.Errorf("step %d: List(%s) = %s, want %s", i, s.topic, got, s.want)
			}
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
	}
	sh := p.shard("room:b")
	if _, ok := sh.topics["room:b"]; ok {
		t.Error("empty topic kept in memory")
	}
}

func TestMemoryPresenceCopiesMeta(t *testing.T) {
	p := NewMemoryPresence()
	defer p.Close()
	meta := []byte(`{"a":1}`)
	if err := p.Track(ctx, "t", PresenceEntry{ID: "r", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	meta[2] = 'b'
	es, err := p.List(ctx, "t")
	if err != nil || len(es) != 1 || string(es[0].Meta) != `{"a":1}` {
		t.Errorf("List = %s, %v", presenceString(es), err)
	}
}

func TestMemoryPresenceErrors(t *testing.T) {
	p := NewMemoryPresence()
	invalid := []struct {
		name string
		err  error
	}{
		{"track empty topic", p.Track(ctx, "", PresenceEntry{ID: "r"})},
		{"track empty id", p.Track(ctx, "t", PresenceEntry{Key: "k"})},
		{"untrack empty topic", p.Untrack(ctx, "", "r")},
		{"untrack empty id", p.Untrack(ctx, "t", "")},
		{"list empty topic", func() error { _, err := p.List(ctx, ""); return err }()},
	}
	for _, c := range invalid {
		if !errors.Is(c.err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
	if err := p.Track(ctx, "t", PresenceEntry{ID: "r"}); err != nil {
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
		{"track", p.Track(ctx, "t", PresenceEntry{ID: "r"})},
		{"untrack", p.Untrack(ctx, "t", "r")},
		{"list", func() error { _, err := p.List(ctx, "t"); return err }()},
	}
	for _, c := range closed {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, c.err)
		}
	}
}

func TestMemoryPresenceConcurrent(t *testing.T) {
	p := NewMemoryPresence()
	defer p.Close()
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				topic := fmt.Sprintf("t%d", i%5)
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := p.Track(ctx, topic, PresenceEntry{ID: id, Key: "k"}); err != nil {
					t.Error(err)
				}
				if _, err := p.List(ctx, topic); err != nil {
					t.Error(err)
				}
				if i%2 == 0 {
					if err := p.Untrack(ctx, topic, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for i := range 5 {
		es, err := p.List(ctx, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += len(es)
	}
	if total != workers*per/2 {
		t.Errorf("%d entries left, want %d", total, workers*per/2)
	}
}
