package channels

import "net/http"

// hijackable returns the innermost writer in w's Unwrap chain that
// implements http.Hijacker (the HTTP server's own response writer).
//
// gorilla/websocket v1.5.3 type-asserts http.Hijacker instead of using
// http.ResponseController, and since Caddy 2.11.5 the writer handed to
// handlers only exposes Unwrap (its idle-timeout wrapper), so upgrading on w
// directly answers 500. The innermost hijacker is used, rather than the
// first, because an access-log recorder higher in the chain wraps the
// hijacked connection to count written bytes: the socket outlives the
// request, and those counters would be written by the socket while the
// recorder reads them for the log entry.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	found := w
	for cur := w; cur != nil; {
		if _, ok := cur.(http.Hijacker); ok {
			found = cur
		}
		u, ok := cur.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		cur = u.Unwrap()
	}
	return found
}
