package natsbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// firstScanAttempt is how long the first attempt of a scan of a
// replicated stream waits for its consumer to be created; each further
// attempt waits half as long again, within the caller's deadline.
const firstScanAttempt = 50 * time.Millisecond

// errUnplaced reports a consumer whose creation was not answered in time:
// in a cluster, it may have been placed on a server that is down.
var errUnplaced = errors.New("consumer creation not answered")

// errMisplaced reports a consumer placed on a server that does not lead
// the stream (see scan).
var errMisplaced = errors.New("consumer placed off the stream leader")

// consumerCreate is the request creating an ephemeral consumer.
type consumerCreate struct {
	Stream string                   `json:"stream_name"`
	Config jetstream.ConsumerConfig `json:"config"`
}

// consumerCreated is the server's answer to a consumerCreate.
type consumerCreated struct {
	jetstream.ConsumerInfo
	Error *jetstream.APIError `json:"error,omitempty"`
}

// scan calls fn with every message matching filter (only the newest of
// each subject when lastPerSubject, only those from stream sequence from
// on when from is positive), oldest first, as of the start of the scan.
// It reads through a short-lived push consumer: one request creates it,
// and the server sends the messages right away.
//
// In a cluster, JetStream 2.9 places such a consumer on any server holding
// the stream, one that is down included (until it is removed from the
// stream's peers), and then never answers. So with more than one replica
// each attempt waits firstScanAttempt, then half as long again each time
// (seven attempts within the default request timeout), and
// a consumer not answered in time is deleted and created again, until the
// caller's deadline.
//
// A consumer also reads the store of the server it is placed on, and a
// follower applies a write a moment after the leader acknowledged it: a
// presence list right after a track missed the entry 7 times in 400 on a
// three-server cluster (nats-server 2.9.10). So with more than one replica
// a consumer must sit on the stream's leader, which has applied every
// acknowledged write; one placed elsewhere is deleted and created again
// (the leader is looked up again first, in case it moved).
func (c *client) scan(ctx context.Context, filter string, lastPerSubject bool, from uint64,
	fn func(subject string, seq uint64, data []byte)) error {
	return c.withStream(ctx, func(s jetstream.Stream) error {
		wait := firstScanAttempt
		leader := ""
		if c.cfg.Replicas > 1 {
			var err error
			if leader, err = c.streamLeader(ctx, s, false); err != nil {
				return err
			}
		}
		for {
			create, cancel := ctx, context.CancelFunc(func() {})
			if c.cfg.Replicas > 1 {
				create, cancel = context.WithTimeout(ctx, wait)
			}
			msgs, err := c.scanOnce(create, ctx, filter, lastPerSubject, from, leader)
			cancel()
			if errors.Is(err, errMisplaced) && ctx.Err() == nil {
				if leader, err = c.streamLeader(ctx, s, true); err != nil {
					return err
				}
				continue
			}
			if err == nil {
				for _, m := range msgs {
					fn(m.subject, m.seq, m.data)
				}
				return nil
			}
			if !errors.Is(err, errUnplaced) || ctx.Err() != nil {
				return err
			}
			wait += wait / 2
		}
	})
}

// scanOnce creates the consumer of a scan within create's deadline and
// returns the messages it sends within ctx's.
func (c *client) scanOnce(create, ctx context.Context, filter string, lastPerSubject bool, from uint64, leader string) ([]scanned, error) {
	inbox := c.nc.NewInbox()
	var col collector
	col.more = make(chan struct{}, 1)
	sub, err := c.nc.Subscribe(inbox, col.add)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := "scan" + hex.EncodeToString(id[:])
	req := consumerCreate{Stream: c.cfg.Name, Config: jetstream.ConsumerConfig{
		Name:              name,
		DeliverSubject:    inbox,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     filter,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}}
	switch {
	case lastPerSubject:
		req.Config.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case from > 0:
		req.Config.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		req.Config.OptStartSeq = from
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// Delete it without waiting for the answer, whether it was created
	// or not; the inactive threshold removes it should this be lost.
	defer func() { _ = c.nc.Publish("$JS.API.CONSUMER.DELETE."+c.cfg.Name+"."+name, nil) }()
	resp, err := c.nc.RequestWithContext(create, "$JS.API.CONSUMER.CREATE."+c.cfg.Name+"."+name, body)
	if err != nil {
		if create.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errUnplaced, err)
		}
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	var created consumerCreated
	if err := json.Unmarshal(resp.Data, &created); err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	if created.Error != nil {
		return nil, fmt.Errorf("create consumer: %w", created.Error)
	}
	if leader != "" && (created.Cluster == nil || created.Cluster.Leader != leader) {
		return nil, errMisplaced
	}
	msgs, err := col.wait(ctx, int(created.NumPending))
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", filter, err)
	}
	return msgs, nil
}

// scanned is one message a scan received.
type scanned struct {
	subject string
	seq     uint64
	data    []byte
}

// collector gathers the messages a consumer pushes to a scan.
type collector struct {
	mu   sync.Mutex
	msgs []scanned
	more chan struct{} // signalled after each message
}

// add is the subscription's handler.
func (col *collector) add(msg *nats.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return // not a stream message (a status)
	}
	col.mu.Lock()
	col.msgs = append(col.msgs, scanned{msg.Subject, md.Sequence.Stream, msg.Data})
	col.mu.Unlock()
	select {
	case col.more <- struct{}{}:
	default:
	}
}

// wait returns the first n messages once they arrived.
func (col *collector) wait(ctx context.Context, n int) ([]scanned, error) {
	for {
		col.mu.Lock()
		got := len(col.msgs)
		msgs := col.msgs
		col.mu.Unlock()
		if got >= n {
			return msgs[:n], nil
		}
		select {
		case <-col.more:
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d messages: %w", got, n, ctx.Err())
		}
	}
}

// streamLeader returns the name of the server leading stream s, as last
// looked up, or looked up now when fresh is set or none is known. A stream
// without a leader (one is being elected) is asked again every 10 ms until
// ctx ends.
func (c *client) streamLeader(ctx context.Context, s jetstream.Stream, fresh bool) (string, error) {
	if p := c.leader.Load(); p != nil && !fresh {
		return *p, nil
	}
	for {
		info, err := s.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			name := info.Cluster.Leader
			c.leader.Store(&name)
			return name, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return "", fmt.Errorf("stream %s has no leader: %w", c.cfg.Name, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
