package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// stdExchanger carries https:// calls over net/http: TLS, and HTTP/2
// when the app offers it (one multiplexed connection instead of a pool).
type stdExchanger struct {
	transport *http.Transport
	client    *http.Client
}

// Header values shared by every net/http request; net/http never
// modifies them.
var (
	stdContentType = []string{"application/json"}
	stdUserAgent   = []string{userAgent}
	stdEvents      = map[string][]string{
		"connect":   {"connect"},
		"join":      {"join"},
		"handle_in": {"handle_in"},
		"leave":     {"leave"},
	}
)

// stdEventHeader returns the X-Channels-Event value of event.
func stdEventHeader(event string) []string {
	if v, ok := stdEvents[event]; ok {
		return v
	}
	return []string{event}
}

// newStdExchanger returns the net/http exchanger of cfg.
func newStdExchanger(cfg Config) *stdExchanger {
	transport := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    cfg.MaxConcurrency,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        cfg.TLSConfig.Clone(),
	}
	return &stdExchanger{
		transport: transport,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// exchange implements exchanger.
func (e *stdExchanger) exchange(ctx context.Context, deadline time.Time, r request) (Response, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return Response{}, err
	}
	req.Header["Content-Type"] = stdContentType
	req.Header["User-Agent"] = stdUserAgent
	req.Header["X-Channels-Event"] = stdEventHeader(r.event)
	if r.signature != nil {
		req.Header["X-Channels-Signature"] = []string{string(r.signature)}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	out := Response{Status: resp.StatusCode}
	out.Body, err = readCappedBody(resp.Body, resp.ContentLength, r.maxBody)
	if err != nil {
		return out, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	return out, nil
}

// closeIdle implements exchanger.
func (e *stdExchanger) closeIdle() { e.transport.CloseIdleConnections() }

// readCappedBody reads r to its end into a buffer sized from the declared
// length, failing once more than limit bytes arrive. Reading to the end
// lets the transport reuse the connection.
func readCappedBody(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return nil, fmt.Errorf("answer of %d bytes is over the %d byte limit", declared, limit)
	}
	if declared == 0 {
		return nil, nil
	}
	size := int64(512)
	if declared > 0 {
		size = declared + 1 // room to see EOF without growing
	}
	size = min(size, limit+1)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("answer is over the %d byte limit", limit)
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, nil
			}
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading answer: %w", err)
		}
	}
}
