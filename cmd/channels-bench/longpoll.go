package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// lpConn is the LongPoll transport of a Phoenix client (-transport
// longpoll): a session token, polls for messages, POSTs for pushes.
type lpConn struct {
	http   *http.Client
	url    string // http(s)://…/socket/longpoll?vsn=2.0.0
	token  string
	ctx    context.Context
	cancel context.CancelFunc
}

// longpollURL turns the socket endpoint into its LongPoll URL.
func longpollURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse -url: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("-url %q: scheme must be ws, wss, http or https", base)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/websocket"), "/") + "/longpoll"
	u.RawQuery = "vsn=2.0.0"
	return u.String(), nil
}

// newLPTransport is the HTTP transport of every LongPoll client of a run:
// keep-alive connections from the dialer's source addresses.
func newLPTransport(d *dialer) *http.Transport {
	nd := &net.Dialer{Timeout: d.timeout}
	dial := nd.DialContext
	if len(d.sources) > 0 {
		dial = d.dialFrom
	}
	return &http.Transport{DialContext: dial, TLSClientConfig: d.tls, MaxIdleConnsPerHost: 1 << 16, IdleConnTimeout: time.Minute}
}

// dialLongPoll opens a LongPoll session.
func (d *dialer) dialLongPoll(ctx context.Context) (*client, error) {
	ctx2, cancel := context.WithCancel(context.Background())
	lp := &lpConn{http: &http.Client{Transport: d.lpTransport, Timeout: 30 * time.Second}, url: d.lpURL, ctx: ctx2, cancel: cancel}
	a, err := lp.do(ctx, http.MethodGet, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open longpoll session: %w", err)
	}
	if a.Status != 410 || a.Token == "" {
		cancel()
		return nil, fmt.Errorf("open longpoll session: status %d", a.Status)
	}
	return &client{lp: lp, proto: d.proto, timeout: d.timeout}, nil
}

// lpAnswer is a LongPoll answer.
type lpAnswer struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

// do makes one request (the token appended) and decodes the answer.
func (lp *lpConn) do(ctx context.Context, method string, body []byte) (lpAnswer, error) {
	u := lp.url
	if lp.token != "" {
		u += "&token=" + lp.token
	}
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return lpAnswer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := lp.http.Do(req)
	if err != nil {
		return lpAnswer{}, err
	}
	defer resp.Body.Close()
	var a lpAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return lpAnswer{}, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if a.Token != "" {
		lp.token = a.Token
	}
	return a, nil
}

// poll waits for the next messages and appends them to buf, one per line.
func (lp *lpConn) poll(buf []byte) ([]byte, error) {
	for {
		a, err := lp.do(lp.ctx, http.MethodGet, nil)
		if err != nil {
			return nil, err
		}
		switch a.Status {
		case 200:
			for i, m := range a.Messages {
				if i > 0 {
					buf = append(buf, '\n')
				}
				buf = append(buf, m...)
			}
			return buf, nil
		case 204:
		default:
			return nil, fmt.Errorf("poll: status %d (session gone)", a.Status)
		}
	}
}

// post sends one message and checks the answer.
func (lp *lpConn) post(ctx context.Context, frame []byte) error {
	a, err := lp.do(ctx, http.MethodPost, frame)
	if err != nil {
		return err
	}
	if a.Status != 200 {
		return fmt.Errorf("post: status %d", a.Status)
	}
	return nil
}
