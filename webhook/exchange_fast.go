package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// fastIdleConnDuration is how long a pooled connection to an http://
// upstream may stay idle. It is below the 5 s keep-alive timeout of
// Node's http server (and above none of the usual servers' defaults), so
// that the app rarely closes a connection the pool is about to use.
const fastIdleConnDuration = 4 * time.Second

// fastMaxConnsPerHost bounds the connections to one host:addr, far above
// what the per-URL concurrency caps let through for any realistic number
// of webhook URLs on one app.
const fastMaxConnsPerHost = 1 << 14

// fastExchanger carries http:// calls over fasthttp's client: pooled
// keep-alive HTTP/1.1 connections, requests and answers in reused
// buffers, the answer read on the calling goroutine. It was chosen over
// net/http for plain upstreams by BenchmarkExchange (BENCHMARKS.md): a
// call costs about half of net/http's, which spends the difference in
// its per-connection reader and writer goroutines.
type fastExchanger struct {
	client *fasthttp.Client
}

// newFastExchanger returns the fasthttp exchanger of cfg.
func newFastExchanger(cfg Config) *fastExchanger {
	return &fastExchanger{client: &fasthttp.Client{
		Name:                     userAgent,
		NoDefaultUserAgentHeader: false,
		// The concurrency cap is Client's, per URL; several URLs of one
		// app (join, handle_in, leave) share a host, so the host's
		// connections are not capped below the sum (as with net/http).
		MaxConnsPerHost:               fastMaxConnsPerHost,
		MaxConnWaitTimeout:            cfg.Timeout,
		MaxIdleConnDuration:           fastIdleConnDuration,
		MaxResponseBodySize:           int(min(cfg.MaxResponseBytes, int64(^uint(0)>>1))),
		ReadBufferSize:                16 << 10,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		// A POST is retried once, and only when its connection failed
		// before any byte of the answer (see retryBeforeAnswer).
		RetryIfErr: retryBeforeAnswer,
		Dial:       (&fasthttp.TCPDialer{Concurrency: 0, DNSCacheDuration: time.Minute}).Dial,
	}}
}

// retryBeforeAnswer lets fasthttp retry a request once when its
// connection failed before any answer byte: fasthttp reports that case as
// a bare io.EOF (nothing read; an EOF after some bytes comes wrapped in a
// header or body error) or a write error (the request was not fully
// sent). A timeout, or a failure once the answer began, is never retried.
func retryBeforeAnswer(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 || errors.Is(err, fasthttp.ErrTimeout) {
		return false, false
	}
	if err == io.EOF { // bare: a wrapped EOF ("reading response headers: EOF") came after answer bytes
		return false, true
	}
	var op *net.OpError
	return false, errors.As(err, &op) && op.Op == "write" && !op.Timeout()
}

// exchange implements exchanger. A ctx that can be cancelled has the
// exchange run on a goroutine of its own, so that the caller returns at
// the cancellation (fasthttp takes no context); the exchange then ends
// at its deadline. The usual call (context.Background) runs inline.
func (e *fastExchanger) exchange(ctx context.Context, deadline time.Time, r request) (Response, error) {
	if ctx.Done() == nil {
		return e.do(deadline, &r)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	type result struct {
		resp Response
		err  error
	}
	// The request must outlive a cancelled caller: copy what it borrows.
	own := r
	own.body = append([]byte(nil), r.body...)
	own.signature = append([]byte(nil), r.signature...)
	if r.signature == nil {
		own.signature = nil
	}
	done := make(chan result, 1)
	go func() {
		resp, err := e.do(deadline, &own)
		done <- result{resp, err}
	}()
	select {
	case res := <-done:
		return res.resp, res.err
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

// do makes the exchange on the calling goroutine.
func (e *fastExchanger) do(deadline time.Time, r *request) (Response, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(r.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("X-Channels-Event", r.event)
	if r.signature != nil {
		req.Header.SetBytesV("X-Channels-Signature", r.signature)
	}
	req.SetBodyRaw(r.body)
	err := e.client.DoDeadline(req, resp, deadline)
	out := Response{Status: resp.Header.StatusCode()}
	if err != nil {
		if !errors.Is(err, fasthttp.ErrBodyTooLarge) {
			out.Status = 0
			if errors.Is(err, fasthttp.ErrTimeout) {
				err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
			}
			return out, err
		}
		return out, fmt.Errorf("status %d: answer is over the %d byte limit: %w", out.Status, r.maxBody, err)
	}
	if b := resp.Body(); len(b) > 0 {
		out.Body = append([]byte(nil), b...)
	}
	return out, nil
}

// closeIdle implements exchanger.
func (e *fastExchanger) closeIdle() { e.client.CloseIdleConnections() }
