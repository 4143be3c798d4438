package integration

// Intercept (docs/intercept.md) through a real Caddy with raw WebSocket
// clients: per-subscriber drop, set and remove, pushes with each
// subscriber's join_ref in V1 and V2 (text and binary), untouched
// broadcasts for events that are not intercepted, a failing expression,
// and assigns that come from join and handle_in webhooks.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// interceptAPIKey is the api_key of the intercept tests' mount.
const interceptAPIKey = "intercept-key"

// interceptCaddyfile mounts one socket whose room:* channel intercepts
// new_msg (the example of docs/intercept.md plus the "transport" key of
// Phoenix's test fixture, conformance item 77), broken (a step that fails
// at runtime) and bin (binary payloads); hooked:* takes its channel
// assigns from join and handle_in webhooks at hookURL.
func interceptCaddyfile(hookURL string) string {
	return site(`	channels {
		api_key ` + interceptAPIKey + `
		assign user_id "params.user"
		channel room:* {
			join allow
			handle_in new_msg broadcast
			handle_in other broadcast
			handle_in broken broadcast
			handle_in bin broadcast
			intercept new_msg {
				drop if "has(payload.muted_by) && payload.muted_by.exists(u, u == assigns.user_id)"
				set mine "payload.user_id == assigns.user_id"
				set transport "':websocket'"
				remove secret
			}
			intercept edited deleted {
				drop if "assigns.user_id == payload.by"
				set seen_by "assigns.user_id"
			}
			intercept broken {
				drop if "payload.nope == 1"
				set ok "true"
			}
			intercept bin {
				drop if "assigns.user_id == 'bob'"
			}
		}
		channel hooked:* {
			join upstream ` + hookURL + `/join
			handle_in promote upstream ` + hookURL + `/promote
			intercept new_msg {
				set role "assigns.role"
				set user "assigns.user_id"
				remove email if "assigns.role != 'admin'"
			}
		}
	}`)
}

// interceptHooks answers the join webhook with the joiner's role (from
// the join payload) as a channel assign, and the promote webhook with
// role "owner".
func interceptHooks(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.URL.Path {
	case "/join":
		var req struct {
			Payload struct {
				Role string `json:"role"`
			} `json:"payload"`
		}
		json.Unmarshal(body, &req)
		whWrite(w, http.StatusOK, fmt.Sprintf(`{"assigns":{"role":%q}}`, req.Payload.Role))
	case "/promote":
		whWrite(w, http.StatusOK, `{"assigns":{"role":"owner"},"reply":{"status":"ok"}}`)
	default:
		whWrite(w, http.StatusNotFound, "")
	}
}

func TestIntercept(t *testing.T) {
	hooks := newWHBackend(t, interceptHooks)
	loadCaddyfile(t, interceptCaddyfile(hooks.url))

	alice := dial(t, "/socket", q("vsn", "2.0.0", "user", "alice"), nil)
	bob := dial(t, "/socket", q("vsn", "2.0.0", "user", "bob"), nil)
	carol := dial(t, "/socket", q("user", "carol"), nil) // V1
	alice.join("3", "3", "room:1")
	bob.join("5", "5", "room:1")
	carol.send(`{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`)
	carol.expect(`{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}`)

	t.Run("drop for one subscriber, set per subscriber, remove", func(t *testing.T) {
		alice.send(`["3","10","room:1","new_msg",{"user_id":"alice","body":"hi","secret":"s3cr3t","muted_by":["bob"]}]`)
		// The push comes before the reply: the broadcast is delivered
		// while the push is handled.
		alice.expect(`["3",null,"room:1","new_msg",{"user_id":"alice","body":"hi","muted_by":["bob"],"mine":true,"transport":":websocket"}]`)
		alice.expect(`["3","10","room:1","phx_reply",{"status":"ok","response":{}}]`)
		carol.expect(`{"topic":"room:1","event":"new_msg","ref":null,"payload":{"user_id":"alice","body":"hi","muted_by":["bob"],"mine":false,"transport":":websocket"}}`)

		bob.send(`["5","11","room:1","new_msg",{"user_id":"bob","body":"yo"}]`)
		bob.expect(`["5",null,"room:1","new_msg",{"user_id":"bob","body":"yo","mine":true,"transport":":websocket"}]`)
		bob.expect(`["5","11","room:1","phx_reply",{"status":"ok","response":{}}]`)
		alice.expect(`["3",null,"room:1","new_msg",{"user_id":"bob","body":"yo","mine":false,"transport":":websocket"}]`)
		carol.expect(`{"topic":"room:1","event":"new_msg","ref":null,"payload":{"user_id":"bob","body":"yo","mine":false,"transport":":websocket"}}`)
	})

	t.Run("events that are not intercepted stay broadcasts", func(t *testing.T) {
		alice.send(`["3","12","room:1","other",{"secret":"kept"}]`)
		alice.expect(`[null,null,"room:1","other",{"secret":"kept"}]`)
		alice.expect(`["3","12","room:1","phx_reply",{"status":"ok","response":{}}]`)
		// bob's next frame is this broadcast: the muted new_msg before it
		// never reached him.
		bob.expect(`[null,null,"room:1","other",{"secret":"kept"}]`)
		carol.expect(`{"topic":"room:1","event":"other","ref":null,"payload":{"secret":"kept"}}`)
	})

	t.Run("a failing expression drops nothing and sets nothing", func(t *testing.T) {
		alice.send(`["3","13","room:1","broken",{"x":1}]`)
		alice.expect(`["3",null,"room:1","broken",{"x":1,"ok":true}]`)
		alice.expect(`["3","13","room:1","phx_reply",{"status":"ok","response":{}}]`)
		bob.expect(`["5",null,"room:1","broken",{"x":1,"ok":true}]`)
		carol.expect(`{"topic":"room:1","event":"broken","ref":null,"payload":{"x":1,"ok":true}}`)
	})

	t.Run("one intercept line, several events", func(t *testing.T) {
		for _, ev := range []string{"edited", "deleted"} {
			status, body := httpDo(t, http.MethodPost, "/socket/api/broadcast",
				http.Header{"Authorization": {"Bearer " + interceptAPIKey}},
				`{"topic":"room:1","event":"`+ev+`","payload":{"by":"alice"}}`)
			if status != http.StatusAccepted {
				t.Fatalf("publish %s: %d %s", ev, status, body)
			}
		}
		// alice wrote both: dropped for her; the next frame she gets is a
		// later broadcast.
		for _, ev := range []string{"edited", "deleted"} {
			bob.expect(`["5",null,"room:1","` + ev + `",{"by":"alice","seen_by":"bob"}]`)
			carol.expect(`{"topic":"room:1","event":"` + ev + `","ref":null,"payload":{"by":"alice","seen_by":"carol"}}`)
		}
		alice.send(`["3","30","room:1","other",{}]`)
		alice.expect(`[null,null,"room:1","other",{}]`)
		alice.expect(`["3","30","room:1","phx_reply",{"status":"ok","response":{}}]`)
		bob.expect(`[null,null,"room:1","other",{}]`)
		carol.expect(`{"topic":"room:1","event":"other","ref":null,"payload":{}}`)
	})

	t.Run("the publish API goes through the intercept", func(t *testing.T) {
		status, body := httpDo(t, http.MethodPost, "/socket/api/broadcast",
			http.Header{"Authorization": {"Bearer " + interceptAPIKey}},
			`{"topic":"room:1","event":"new_msg","payload":{"user_id":"carol","muted_by":["alice"]}}`)
		if status != http.StatusAccepted {
			t.Fatalf("publish: %d %s", status, body)
		}
		bob.expect(`["5",null,"room:1","new_msg",{"user_id":"carol","muted_by":["alice"],"mine":false,"transport":":websocket"}]`)
		carol.expect(`{"topic":"room:1","event":"new_msg","ref":null,"payload":{"user_id":"carol","muted_by":["alice"],"mine":true,"transport":":websocket"}}`)
	})

	t.Run("binary payloads: drop if applies, V2 gets a push with its join_ref", func(t *testing.T) {
		// Client push: kind 0, join_ref "3", ref "14", topic, event "bin".
		push := append([]byte{0, 1, 2, 6, 3}, "314room:1bin"...)
		alice.sendBinary(append(push, 0xCA, 0xFE))
		alice.expectBinary(append(append([]byte{0, 1, 6, 3}, "3room:1bin"...), 0xCA, 0xFE))
		alice.expect(`["3","14","room:1","phx_reply",{"status":"ok","response":{}}]`)
		// bob is dropped and carol (V1) cannot receive binary: the next
		// frame both get is the next text broadcast.
		alice.send(`["3","15","room:1","other",{}]`)
		alice.expect(`[null,null,"room:1","other",{}]`)
		alice.expect(`["3","15","room:1","phx_reply",{"status":"ok","response":{}}]`)
		bob.expect(`[null,null,"room:1","other",{}]`)
		carol.expect(`{"topic":"room:1","event":"other","ref":null,"payload":{}}`)
	})

	t.Run("join and handle_in webhooks set the assigns intercept sees; remove if strips per subscriber", func(t *testing.T) {
		alice.send(`["20","20","hooked:1","phx_join",{"role":"admin"}]`)
		alice.expect(`["20","20","hooked:1","phx_reply",{"status":"ok","response":{}}]`)
		bob.send(`["21","21","hooked:1","phx_join",{"role":"guest"}]`)
		bob.expect(`["21","21","hooked:1","phx_reply",{"status":"ok","response":{}}]`)

		publish := func() {
			t.Helper()
			status, body := httpDo(t, http.MethodPost, "/socket/api/broadcast",
				http.Header{"Authorization": {"Bearer " + interceptAPIKey}},
				`{"topic":"hooked:1","event":"new_msg","payload":{"body":"b","email":"e@x"}}`)
			if status != http.StatusAccepted {
				t.Fatalf("publish: %d %s", status, body)
			}
		}
		publish()
		alice.expect(`["20",null,"hooked:1","new_msg",{"body":"b","email":"e@x","role":"admin","user":"alice"}]`)
		bob.expect(`["21",null,"hooked:1","new_msg",{"body":"b","role":"guest","user":"bob"}]`)

		bob.send(`["21","22","hooked:1","promote",{}]`)
		bob.expect(`["21","22","hooked:1","phx_reply",{"status":"ok","response":{}}]`)
		publish()
		alice.expect(`["20",null,"hooked:1","new_msg",{"body":"b","email":"e@x","role":"admin","user":"alice"}]`)
		bob.expect(`["21",null,"hooked:1","new_msg",{"body":"b","role":"owner","user":"bob"}]`)
	})
}
