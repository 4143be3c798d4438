package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// apiPublisher publishes through the server's HTTP API on one keep-alive
// connection, one request per batch: Phoenix's POST {path}/api/broadcast
// (202), or Centrifugo's POST {api}/publish and {api}/batch (200 with a
// result object, errors in the body).
type apiPublisher struct {
	http       *http.Client
	proto      protocol
	url        string
	authHeader string
	auth       string
	topicJSON  []byte
	eventJSON  []byte
	size       int
	body       []byte
	resp       []byte
}

// newAPIPublisher prepares the HTTP client.
func newAPIPublisher(cfg *config) *apiPublisher {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.timeout}).DialContext,
		TLSClientConfig:     cfg.tlsClient,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	p := &apiPublisher{
		http:       &http.Client{Transport: tr, Timeout: cfg.timeout},
		proto:      cfg.protocol,
		url:        cfg.api,
		authHeader: "Authorization",
		auth:       "Bearer " + cfg.key,
		topicJSON:  jsonString(cfg.topic),
		eventJSON:  jsonString("msg"),
		size:       cfg.size,
	}
	if cfg.protocol == centrifugoJSON {
		p.url = strings.TrimSuffix(cfg.api, "/")
		p.authHeader, p.auth = "X-API-Key", cfg.key
	}
	return p
}

// publish sends n messages (Phoenix: an array when n > 1; Centrifugo: the
// batch endpoint) and checks the answer.
func (p *apiPublisher) publish(ctx context.Context, seq int64, n int) error {
	url, want := p.url, http.StatusAccepted
	if p.proto == centrifugoJSON {
		p.body = centrifugoAPIBody(p.body[:0], p.topicJSON, seq, n, p.size)
		url, want = p.url+"/publish", http.StatusOK
		if n > 1 {
			url = p.url + "/batch"
		}
	} else {
		p.body = p.phoenixBody(p.body[:0], seq, n)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(p.body))
	if err != nil {
		return fmt.Errorf("api request: %w", err)
	}
	req.Header.Set(p.authHeader, p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("api: HTTP %d %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	if p.proto == centrifugoJSON {
		// Centrifugo answers 200 and reports errors in the body.
		var buf bytes.Buffer
		buf.Grow(256)
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return fmt.Errorf("api: read answer: %w", err)
		}
		if bytes.Contains(buf.Bytes(), []byte(`"error"`)) {
			return fmt.Errorf("api: %.200s", buf.Bytes())
		}
	}
	// Read the body to the end so the connection is reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// phoenixBody appends the publish API body for n messages from seq (an
// array when n > 1), all stamped with the current time.
func (p *apiPublisher) phoenixBody(b []byte, seq int64, n int) []byte {
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
	return b
}

// close drops the idle connections.
func (p *apiPublisher) close() { p.http.CloseIdleConnections() }

// pushPublisher publishes by pushing "msg" on its own socket joined to the
// topic (rule handle_in msg broadcast; Centrifugo: a client publish command
// on a subscribed socket); its reader discards the broadcasts it receives
// too and counts the push replies.
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
		for len(b) > 0 {
			var msg []byte
			if msg, b = p.c.nextMessage(b); msg != nil {
				p.count(msg)
			}
		}
	}
}

// count counts one incoming message: a push reply, ok or not; the
// publisher's own copies of the broadcasts are ignored.
func (p *pushPublisher) count(msg []byte) {
	if f := scanFields(msg); f.HasS {
		return // its own copy of a broadcast
	}
	var ok, isReply bool
	if p.c.proto == centrifugoJSON {
		ok, isReply = isCentrifugoOKReply(msg), bytes.HasPrefix(msg, []byte(`{"id":`))
	} else {
		ok, isReply = isStatusOK(msg), bytes.Contains(msg, []byte(`"phx_reply"`))
	}
	if ok {
		p.okReplies.Add(1)
	} else if isReply {
		p.errors.Add(1)
		p.firstErr.CompareAndSwap(nil, string(msg))
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
		if p.c.proto == centrifugoJSON {
			p.buf = appendClientPublish(p.buf[:0], p.c.nextRef(), p.topicJSON, time.Now().UnixNano(), s, p.size)
		} else {
			p.buf = appendPush(p.buf[:0], p.c.joinRef, p.c.nextRef(), p.topicJSON, p.eventJSON, time.Now().UnixNano(), s, p.size)
		}
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
