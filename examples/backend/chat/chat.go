// Package chat is a small chat backend for the channels Caddy handler. It
// implements the four webhooks of docs/webhooks.md (connect, join,
// handle_in, leave) and a login endpoint, with the standard library only:
//
//	POST /login           {"name":"alice"} or name=alice → {"token":"…"}
//	POST /socket/connect  verifies params.token → socket id and assigns
//	POST /channels/join   room:* for everyone, room:private-* for members
//	POST /channels/event  new_msg, shout, whoami, rename, bye, ping_me, echo
//	POST /channels/leave  records the notification, answers 204
//
// Every webhook request must carry a valid X-Channels-Signature.
package chat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"
)

// MaxBody is the largest request body the app reads.
const MaxBody = 1 << 20

// LeaveEvent is one leave notification the app received.
type LeaveEvent struct {
	// SocketID is the socket's id ("user_socket:alice"), or "" if anonymous.
	SocketID string
	// User is the "user" assign of the channel, or "" if none.
	User string
	// Topic is the topic the socket left.
	Topic string
	// Reason is leave, closed, timeout, duplicate_join, shutdown, disconnect,
	// token_expired or flood (docs/webhooks.md); treat others as closed.
	Reason string
}

// App is the chat backend. Its zero value is not usable: call New.
type App struct {
	secret   []byte
	tokenKey []byte
	logf     func(string, ...any)
	now      func() time.Time
	// members lists who may join room:<subtopic> for private subtopics.
	members map[string][]string

	mu     sync.Mutex
	leaves []LeaveEvent
}

// New returns the app. secret is the gateway's webhook_secret; if it is
// empty, webhook signatures are not checked (only for local experiments)
// and login tokens are signed with a random key that lasts as long as the
// process. logf receives one line per decision; nil discards them.
func New(secret string, logf func(string, ...any)) *App {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	a := &App{
		secret: []byte(secret),
		logf:   logf,
		now:    time.Now,
		members: map[string][]string{
			"private-staff": {"alice", "bob"},
		},
	}
	if secret != "" {
		// A key of its own for login tokens, derived from the secret, so a
		// token can never pass for a webhook signature or the reverse.
		mac := hmac.New(sha256.New, a.secret)
		mac.Write([]byte("chat login tokens v1"))
		a.tokenKey = mac.Sum(nil)
	} else {
		a.tokenKey = make([]byte, 32)
		rand.Read(a.tokenKey)
	}
	return a
}

// Handler serves the login endpoint and the four webhooks. Other paths are
// 404 and other methods 405.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.serveLogin)
	mux.Handle("POST /socket/connect", a.hook("connect", a.connect))
	mux.Handle("POST /channels/join", a.hook("join", a.join))
	mux.Handle("POST /channels/event", a.hook("handle_in", a.handleIn))
	mux.Handle("POST /channels/leave", a.hook("leave", a.leave))
	return mux
}

// Leaves returns a copy of the leave notifications received so far, oldest
// first.
func (a *App) Leaves() []LeaveEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]LeaveEvent(nil), a.leaves...)
}

// hookFunc decodes a verified webhook body and returns the HTTP status and
// the JSON answer (nil for none).
type hookFunc func(body []byte) (status int, answer any)

// hook wraps a webhook: it reads the body (at most MaxBody), checks the
// event header and the signature, then runs h.
func (a *App) hook(event string, h hookFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSON(w, http.StatusRequestEntityTooLarge, errorBody("body too large"))
				return
			}
			writeJSON(w, http.StatusBadRequest, errorBody("reading body: "+err.Error()))
			return
		}
		if got := r.Header.Get(EventHeader); got != event {
			a.logf("%s: refused: %s is %q", r.URL.Path, EventHeader, got)
			writeJSON(w, http.StatusBadRequest, errorBody(EventHeader+" must be "+event))
			return
		}
		if len(a.secret) > 0 {
			if err := VerifySignature(a.secret, r.Header.Get(SignatureHeader), body, a.now()); err != nil {
				a.logf("%s: refused: %v", event, err)
				writeJSON(w, http.StatusUnauthorized, errorBody("invalid signature"))
				return
			}
		}
		status, answer := h(body)
		writeJSON(w, status, answer)
	})
}

// serveLogin answers POST /login: a form or JSON {"name": …} gets
// {"token": …}. This demo has no passwords: any valid name logs in.
func (a *App) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	var name string
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/json" {
		var in struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("decoding body: "+err.Error()))
			return
		}
		name = in.Name
	} else {
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("decoding form: "+err.Error()))
			return
		}
		name = r.PostForm.Get("name")
	}
	token, err := a.IssueToken(name)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody(err.Error()))
		return
	}
	a.logf("login: %s", name)
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// errorBody is the JSON answer to a request the app cannot handle.
func errorBody(msg string) map[string]string {
	return map[string]string{"error": msg}
}

// writeJSON writes status and, unless answer is nil, answer as JSON.
func writeJSON(w http.ResponseWriter, status int, answer any) {
	if answer == nil {
		w.WriteHeader(status)
		return
	}
	body, err := json.Marshal(answer)
	if err != nil {
		http.Error(w, "encoding answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
