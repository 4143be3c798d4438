package channels

import (
	"fmt"
	"net/http"
)

// HTTPError is a refused request: the status to answer with and why.
// Embedders turn it into their own error response (the Caddy module returns
// it as a handler error, so handle_errors routes see it).
type HTTPError struct {
	Status int
	Err    error
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%d %s: %v", e.Status, http.StatusText(e.Status), e.Err)
}

// Unwrap returns the cause.
func (e *HTTPError) Unwrap() error { return e.Err }

func httpErrorf(status int, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Err: fmt.Errorf(format, args...)}
}
