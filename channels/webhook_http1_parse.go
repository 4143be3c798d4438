package channels

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"strings"
)

// This file is the response side of the lean HTTP/1.1 webhook client
// (webhook_http1.go): a small parser of response heads and the readers of
// their bodies (sized, chunked, or up to the end of the connection).

// h1MaxHeadBytes caps a response head (status line and headers), as
// MaxResponseHeaderBytes does for the net/http transport.
const h1MaxHeadBytes = 64 << 10

// h1MaxInterim caps the 1xx answers skipped before the final one.
const h1MaxInterim = 8

// errH1Malformed is wrapped by errors of answers that are not HTTP/1.x.
var errH1Malformed = errors.New("malformed HTTP response")

// h1Head is what the client needs of a response head.
type h1Head struct {
	status int
	// length is the declared Content-Length; -1 when none.
	length int64
	// chunked is set by Transfer-Encoding: chunked.
	chunked bool
	// close is set when the connection cannot serve another request
	// (Connection: close, HTTP/1.0).
	close bool
}

// noBody reports whether the answer has no body whatever its headers say.
func (h *h1Head) noBody() bool {
	return h.status == 204 || h.status == 304 || (h.status >= 100 && h.status < 200)
}

// readH1Head reads a final response head from br, skipping 1xx answers.
func readH1Head(br *bufio.Reader) (h1Head, error) {
	for range h1MaxInterim + 1 {
		h, err := readOneH1Head(br)
		if err != nil {
			return h, err
		}
		if h.status >= 200 {
			return h, nil
		}
		if h.status == 101 {
			return h1Head{}, fmt.Errorf("%w: unexpected 101 Switching Protocols", errH1Malformed)
		}
	}
	return h1Head{}, fmt.Errorf("%w: more than %d interim answers", errH1Malformed, h1MaxInterim)
}

// readOneH1Head reads one response head (interim or final) from br.
func readOneH1Head(br *bufio.Reader) (h1Head, error) {
	budget := h1MaxHeadBytes
	line, err := readH1Line(br, &budget)
	if err != nil {
		return h1Head{}, err
	}
	h := h1Head{length: -1}
	// "HTTP/1.x SSS[ reason]"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return h1Head{}, fmt.Errorf("%w: bad status line %q", errH1Malformed, truncateForError(string(line)))
	}
	http10 := line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h1Head{}, fmt.Errorf("%w: bad status code %q", errH1Malformed, truncateForError(string(line)))
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return h1Head{}, fmt.Errorf("%w: status %d", errH1Malformed, h.status)
	}
	closeTok, keepAlive := false, false
	for {
		line, err = readH1Line(br, &budget)
		if err != nil {
			return h1Head{}, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !isH1Token(name) {
			return h1Head{}, fmt.Errorf("%w: bad header line %q", errH1Malformed, truncateForError(string(line)))
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := parseH1Length(value)
			if err != nil || (h.length >= 0 && h.length != n) {
				return h1Head{}, fmt.Errorf("%w: bad Content-Length %q", errH1Malformed, truncateForError(string(value)))
			}
			h.length = n
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(value, "chunked") && !asciiEqualFold(value, "identity") {
				return h1Head{}, fmt.Errorf("%w: unsupported Transfer-Encoding %q", errH1Malformed, truncateForError(string(value)))
			}
			h.chunked = h.chunked || asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				closeTok = closeTok || asciiEqualFold(tok, "close")
				keepAlive = keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
	h.close = closeTok || (http10 && !keepAlive)
	if h.chunked {
		h.length = -1 // chunking wins over a declared length
	}
	return h, nil
}

// readH1Line returns the next line of br without its CRLF or LF, charging
// its length to budget. The slice is valid until the next read of br.
func readH1Line(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	*budget -= len(line)
	if errors.Is(err, bufio.ErrBufferFull) && *budget >= 0 {
		// A line longer than the read buffer: gather it (rare, allocates).
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && *budget >= 0 {
			line, err = br.ReadSlice('\n')
			*budget -= len(line)
			long = append(long, line...)
		}
		line = long
	}
	if *budget < 0 {
		return nil, fmt.Errorf("%w: response head over %d bytes", errH1Malformed, h1MaxHeadBytes)
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if bytes.IndexByte(line, '\r') >= 0 || (len(line) > 0 && (line[0] == ' ' || line[0] == '\t')) {
		return nil, fmt.Errorf("%w: bad line %q", errH1Malformed, truncateForError(string(line)))
	}
	return line, nil
}

// parseH1Length parses a Content-Length value.
func parseH1Length(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, errH1Malformed
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errH1Malformed
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// isH1Token reports whether b is an HTTP token (a header name).
func isH1Token(b []byte) bool {
	for _, c := range b {
		if !h1TokenChars[c] {
			return false
		}
	}
	return true
}

// h1TokenChars marks the bytes allowed in an HTTP token (RFC 9110 tchar).
var h1TokenChars = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

// asciiEqualFold reports whether b equals the lower-case ASCII lower,
// ignoring case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// h1SizedBody reads exactly n bytes of a body; an earlier end of the
// connection is io.ErrUnexpectedEOF.
type h1SizedBody struct {
	r io.Reader
	n int64
}

func (b *h1SizedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// h1ChunkedBody decodes a chunked body, then reads its trailer so that the
// connection is positioned at the next answer.
type h1ChunkedBody struct {
	br *bufio.Reader
	cr io.Reader
}

func (b *h1ChunkedBody) Read(p []byte) (int, error) {
	n, err := b.cr.Read(p)
	if err == io.EOF {
		budget := h1MaxHeadBytes
		for {
			line, lerr := readH1Line(b.br, &budget)
			if lerr != nil {
				if lerr == io.EOF {
					lerr = io.ErrUnexpectedEOF
				}
				return n, fmt.Errorf("reading chunked trailer: %w", lerr)
			}
			if len(line) == 0 {
				break
			}
		}
	}
	return n, err
}

// h1Body returns the reader of the body announced by h, and whether the
// body ends with the connection.
func h1Body(br *bufio.Reader, h *h1Head) (r io.Reader, declared int64, toEOF bool) {
	switch {
	case h.noBody():
		return nil, 0, false
	case h.chunked:
		return &h1ChunkedBody{br: br, cr: httputil.NewChunkedReader(br)}, -1, false
	case h.length >= 0:
		return &h1SizedBody{r: br, n: h.length}, h.length, false
	default:
		return br, -1, true
	}
}
