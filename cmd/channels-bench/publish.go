package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// apiPublisher publishes through POST {path}/api/broadcast on one
// keep-alive connection, one request per batch.
type apiPublisher struct {
	http      *http.Client
	url       string
	auth      string
	topicJSON []byte
	eventJSON []byte
	size      int
	body      []byte
}

// newAPIPublisher prepares the HTTP client.
func newAPIPublisher(cfg *config) *apiPublisher {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.timeout}).DialContext,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &apiPublisher{
		http:      &http.Client{Transport: tr, Timeout: cfg.timeout},
		url:       cfg.api,
		auth:      "Bearer " + cfg.key,
		topicJSON: jsonString(cfg.topic),
		eventJSON: jsonString("msg"),
		size:      cfg.size,
	}
}

// publish sends n messages (an array when n > 1) and expects 202.
func (p *apiPublisher) publish(ctx context.Context, seq int64, n int) error {
	b := p.body[:0]
	t := time.Now().UnixNano()
	if n > 1 {
		b = append(b, '[')
	}
	for k := 0; k < n; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		s := seq
		if seq >= 0 {
			s = seq + int64(k)
		}
		b = appendAPIMessage(b, p.topicJSON, p.eventJSON, t, s, p.size)
	}
	if n > 1 {
		b = append(b, ']')
	}
	p.body = b
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("api request: %w", err)
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("api: HTTP %d %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	// Read the body to the end so the connection is reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// close drops the idle connections.
func (p *apiPublisher) close() { p.http.CloseIdleConnections() }

// pushPublisher publishes by pushing "msg" on its own socket joined to the
// topic (rule handle_in msg broadcast); its reader discards the broadcasts
// it receives too and counts the push replies.
type pushPublisher struct {
	c         *client
	topicJSON []byte
	eventJSON []byte
	size      int
	buf       []byte
	okReplies atomic.Int64
	errors    atomic.Int64
	firstErr  atomic.Value // string
	exited    sync.WaitGroup
}

// newPushPublisher dials and joins the publisher socket.
func newPushPublisher(ctx context.Context, e *env) (*pushPublisher, error) {
	c, err := e.dialer.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	if err := c.join(e.cfg.topic); err != nil {
		c.close()
		return nil, fmt.Errorf("publisher: %w", err)
	}
	p := &pushPublisher{c: c, topicJSON: jsonString(e.cfg.topic), eventJSON: jsonString("msg"), size: e.cfg.size}
	p.exited.Add(1)
	go p.readLoop()
	return p, nil
}

// readLoop consumes the publisher's incoming frames.
func (p *pushPublisher) readLoop() {
	defer p.exited.Done()
	for {
		b, err := p.c.readFrame()
		if err != nil {
			return
		}
		if f := scanFields(b); f.HasS {
			continue // its own copy of a broadcast
		}
		if isStatusOK(b) {
			p.okReplies.Add(1)
		} else if bytes.Contains(b, []byte(`"phx_reply"`)) {
			p.errors.Add(1)
			p.firstErr.CompareAndSwap(nil, string(b))
		}
	}
}

// publish pushes n messages, one frame each.
func (p *pushPublisher) publish(ctx context.Context, seq int64, n int) error {
	for k := 0; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := seq
		if seq >= 0 {
			s = seq + int64(k)
		}
		p.buf = appendPush(p.buf[:0], p.c.joinRef, p.c.nextRef(), p.topicJSON, p.eventJSON, time.Now().UnixNano(), s, p.size)
		if err := p.c.write(p.buf); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	if msg, ok := p.firstErr.Load().(string); ok {
		return fmt.Errorf("push refused: %.200s", msg)
	}
	return nil
}

// close closes the socket and waits for its reader.
func (p *pushPublisher) close() {
	p.c.close()
	p.exited.Wait()
}
