package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// lpAnswer is a LongPoll answer.
type lpAnswer struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
	Reason   string   `json:"reason"`
}

// lpReq makes one LongPoll request on the shared Caddy; it returns the
// HTTP status and the decoded answer.
func lpReq(t *testing.T, method, path, body string) (int, lpAnswer) {
	t.Helper()
	resp := doAcrossReload(t, http.DefaultClient, method, path, http.Header{"Content-Type": {"application/x-ndjson"}}, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a lpAnswer
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, a
}

// lpOpen opens a session at mount with query q and returns the query
// that names it.
func lpOpen(t *testing.T, mount, q string) string {
	t.Helper()
	code, a := lpReq(t, "GET", mount+"/longpoll?"+q+"&", "")
	if code != 200 || a.Status != 410 || a.Token == "" {
		t.Fatalf("open: HTTP %d %+v", code, a)
	}
	return mount + "/longpoll?" + q + "&token=" + a.Token
}

// lpCollect polls until a frame contains want and returns every frame.
func lpCollect(t *testing.T, path, want string) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(recvTimeout); !strings.Contains(strings.Join(got, "\n"), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no frame with %s: %q", want, got)
		}
		_, a := lpReq(t, "GET", path, "")
		if a.Status != 200 && a.Status != 204 {
			t.Fatalf("poll: %+v", a)
		}
		got = append(got, a.Messages...)
	}
	return got
}

// A session that stops polling expires after 1.5 windows: the app's leave
// webhook gets reason "timeout", and the other members see a presence
// leave. Its token answers 410 afterwards.
func TestLongPollExpiryNotifiesLeaveAndPresence(t *testing.T) {
	leaves := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) { w.WriteHeader(http.StatusNoContent) })
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path /lpx
		longpoll {
			window 300ms
		}
		channel room:* {
			join allow
			leave upstream %s/leave
			presence {
				key "params.name"
				batch 10ms
			}
		}
	}`, leaves.url)))
	path := lpOpen(t, "/lpx", "vsn=2.0.0")
	if code, a := lpReq(t, "POST", path, `["1","1","room:exp","phx_join",{"name":"lena"}]`); code != 200 || a.Status != 200 {
		t.Fatalf("join: %d %+v", code, a)
	}
	lpCollect(t, path, `"presence_state"`)
	watcher := dial(t, "/lpx", "vsn=2.0.0", nil)
	watcher.send(`["1","1","room:exp","phx_join",{"name":"walt"}]`)
	watcher.nextEvent("presence_state")
	// lena stops polling: after 1.5 to 3 windows her session expires.
	f := watcher.nextEvent("presence_diff")
	for !strings.Contains(string(f.Payload), `"leaves":{"lena"`) {
		f = watcher.nextEvent("presence_diff")
	}
	reqs := leaves.waitRequests(t, "/leave", 1)
	var body struct {
		Reason string `json:"reason"`
		Topic  string `json:"topic"`
		Socket struct {
			Transport string `json:"transport"`
		} `json:"socket"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Reason != "timeout" || body.Topic != "room:exp" || body.Socket.Transport != "longpoll" {
		t.Fatalf("leave webhook %s, want reason timeout for room:exp from a longpoll socket", reqs[0].body)
	}
	for _, m := range []string{"GET", "POST"} {
		if _, a := lpReq(t, m, path, `["1","2","room:exp","new_msg",{}]`); a.Status != 410 {
			t.Fatalf("%s after expiry: %+v, want 410", m, a)
		}
	}
}

// max_sessions refuses the session beyond it (HTTP 503, status 500, which
// phoenix.js retries with backoff); a config reload keeps open sessions;
// topics reserved for the gateway cannot be joined or published to.
func TestLongPollLimitsAndReload(t *testing.T) {
	block := func(rule string) string {
		return fmt.Sprintf(`	channels {
		path /lpl
		api_key lp-key
		longpoll {
			max_sessions 2
			window 1s
		}
		channel * {
			join allow
			handle_in %s broadcast
		}
	}`, rule)
	}
	loadCaddyfile(t, site(block("a")))
	one := lpOpen(t, "/lpl", "vsn=2.0.0")
	lpOpen(t, "/lpl", "vsn=2.0.0")
	if code, a := lpReq(t, "GET", "/lpl/longpoll?vsn=2.0.0", ""); code != http.StatusServiceUnavailable || a.Status != 500 {
		t.Fatalf("third session: HTTP %d %+v, want 503 and status 500", code, a)
	}
	if _, a := lpReq(t, "POST", one, `["1","1","room:k","phx_join",{}]`); a.Status != 200 {
		t.Fatalf("join: %+v", a)
	}
	// The reserved prefix: no rule matches it, "*" included.
	lpReq(t, "POST", one, `["2","2","\u0000phx_longpoll:x","phx_join",{}]`)
	lpCollect(t, one, `[null,"2","\u0000phx_longpoll:x","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	if code, _ := httpDo(t, "POST", "/lpl/api/broadcast", http.Header{"Authorization": {"Bearer lp-key"}}, `{"topic":"\u0000phx_longpoll:x","event":"lp","payload":{}}`); code != http.StatusBadRequest {
		t.Fatalf("API broadcast to a reserved topic: %d, want 400", code)
	}

	// A reload with changed rules: the session and its channel live on.
	loadCaddyfile(t, site(block("b")))
	if _, a := lpReq(t, "POST", one, `["1","3","room:k","b",{"after":"reload"}]`); a.Status != 200 {
		t.Fatalf("POST after the reload: %+v", a)
	}
	lpCollect(t, one, `{"after":"reload"}`)
}

// longpoll off: {path}/longpoll passes to the next handler.
func TestLongPollOffPassesThrough(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		path /lpo
		longpoll off
	}`))
	code, body := httpDo(t, "GET", "/lpo/longpoll?vsn=2.0.0", nil, "")
	if code != http.StatusNotFound || !strings.Contains(body, "fallthrough") {
		t.Fatalf("HTTP %d %q, want the next handler's 404", code, body)
	}
}
