package channels

import "net/http"

// hijackable returns the first writer in w's Unwrap chain that implements
// http.Hijacker. gorilla/websocket v1.5.3 type-asserts http.Hijacker
// instead of using http.ResponseController, and since Caddy 2.11.5 the
// writer handed to handlers only exposes Unwrap (its idle-timeout wrapper),
// so upgrading on w directly answers 500.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for cur := w; cur != nil; {
		if _, ok := cur.(http.Hijacker); ok {
			return cur
		}
		u, ok := cur.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		cur = u.Unwrap()
	}
	return w
}
