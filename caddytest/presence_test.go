package integration

// Presence: presence_state after every join, presence_diff on joins, leaves
// and closed sockets, batching, the presence API, and the webhook's
// presence answers (protocol reference §6).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// frame is a decoded V2 frame.
type frame struct {
	JoinRef, Ref any
	Topic, Event string
	Payload      json.RawMessage
}

// next reads and decodes the next V2 text frame.
func (c *client) next() frame {
	c.t.Helper()
	_, b := c.recv()
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != 5 {
		c.t.Fatalf("not a V2 frame: %s", b)
	}
	var f frame
	json.Unmarshal(arr[0], &f.JoinRef)
	json.Unmarshal(arr[1], &f.Ref)
	json.Unmarshal(arr[2], &f.Topic)
	json.Unmarshal(arr[3], &f.Event)
	f.Payload = arr[4]
	return f
}

// nextEvent reads frames until one with event arrives and returns it;
// frames of other events are skipped.
func (c *client) nextEvent(event string) frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Event == event {
			return f
		}
	}
}

// presenceMetas is a presence_state or one side of a presence_diff.
type presenceMetas map[string]struct {
	Metas []map[string]any `json:"metas"`
}

// decodePresence decodes a presence_state payload.
func decodePresence(t *testing.T, raw json.RawMessage) presenceMetas {
	t.Helper()
	var p presenceMetas
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("presence payload %s: %v", raw, err)
	}
	return p
}

// presenceDiff is a presence_diff payload.
type presenceDiff struct {
	Joins  presenceMetas `json:"joins"`
	Leaves presenceMetas `json:"leaves"`
}

func decodeDiff(t *testing.T, raw json.RawMessage) presenceDiff {
	t.Helper()
	var d presenceDiff
	if err := json.Unmarshal(raw, &d); err != nil || d.Joins == nil || d.Leaves == nil {
		t.Fatalf("presence_diff payload %s: %v (joins and leaves must both be objects)", raw, err)
	}
	return d
}

// keys returns the sorted keys of p.
func (p presenceMetas) keys() []string {
	var ks []string
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// joinWith joins topic with a payload and expects the ok reply.
func (c *client) joinWith(joinRef, ref, topic, payload string) frame {
	c.t.Helper()
	c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",%s]`, joinRef, ref, topic, payload))
	f := c.nextEvent("phx_reply")
	if !strings.Contains(string(f.Payload), `"status":"ok"`) {
		c.t.Fatalf("join %s refused: %s", topic, f.Payload)
	}
	return f
}

const presenceRules = `
		channel room:* {
			join allow
			handle_in new_msg broadcast
			presence {
				key "params.name"
				meta "{'name': params.name, 'device': has(params.device) ? params.device : 'web'}"
				batch 0
			}
		}
		channel batched:* {
			join allow
			presence {
				batch 300ms
			}
		}
		channel plain:* {
			join allow
		}`

func TestPresenceStateAndDiffs(t *testing.T) {
	loadCaddyfile(t, site("channels {\n api_key k\n"+presenceRules+"\n}"))

	a := dial(t, "/socket", "vsn=2.0.0", nil)
	a.joinWith("1", "1", "room:1", `{"name":"alice"}`)
	st := decodePresence(t, a.nextEvent("presence_state").Payload)
	if len(st) != 1 || len(st["alice"].Metas) != 1 || st["alice"].Metas[0]["name"] != "alice" || st["alice"].Metas[0]["device"] != "web" {
		t.Fatalf("alice's presence_state = %+v", st)
	}
	aliceRef := st["alice"].Metas[0]["phx_ref"].(string)
	if len(aliceRef) != 16 {
		t.Errorf("phx_ref %q: want 16 base64url characters", aliceRef)
	}

	b := dial(t, "/socket", "vsn=2.0.0", nil)
	b.joinWith("1", "1", "room:1", `{"name":"bob","device":"phone"}`)
	st = decodePresence(t, b.nextEvent("presence_state").Payload)
	if got := st.keys(); fmt.Sprint(got) != "[alice bob]" {
		t.Fatalf("bob's presence_state keys = %v", got)
	}
	if st["alice"].Metas[0]["phx_ref"] != aliceRef {
		t.Errorf("alice's phx_ref differs between lists: %v vs %s", st["alice"].Metas[0]["phx_ref"], aliceRef)
	}
	// alice sees bob join (after her own join diff).
	var bobRef string
	for bobRef == "" {
		d := decodeDiff(t, a.nextEvent("presence_diff").Payload)
		if m, ok := d.Joins["bob"]; ok {
			if m.Metas[0]["device"] != "phone" {
				t.Errorf("bob's join meta = %v", m.Metas[0])
			}
			bobRef = m.Metas[0]["phx_ref"].(string)
		}
	}

	// A second socket under the same key: two metas with their own refs.
	b2 := dial(t, "/socket", "vsn=2.0.0", nil)
	b2.joinWith("1", "1", "room:1", `{"name":"bob","device":"laptop"}`)
	st = decodePresence(t, b2.nextEvent("presence_state").Payload)
	if len(st["bob"].Metas) != 2 || st["bob"].Metas[0]["phx_ref"] == st["bob"].Metas[1]["phx_ref"] {
		t.Fatalf("bob with two sockets: %+v", st["bob"])
	}

	// An explicit leave: the leave diff names bob's first ref.
	b.send(`["1","2","room:1","phx_leave",{}]`)
	for {
		d := decodeDiff(t, a.nextEvent("presence_diff").Payload)
		if m, ok := d.Leaves["bob"]; ok {
			if len(m.Metas) != 1 || m.Metas[0]["phx_ref"] != bobRef || m.Metas[0]["device"] != "phone" {
				t.Fatalf("bob's leave = %+v, want ref %s", m, bobRef)
			}
			break
		}
	}
	// A socket that just goes away: its presence leaves too.
	b2.conn.Close()
	for {
		d := decodeDiff(t, a.nextEvent("presence_diff").Payload)
		if m, ok := d.Leaves["bob"]; ok && m.Metas[0]["device"] == "laptop" {
			break
		}
	}
	// The API lists what is left: alice only.
	status, body := httpDo(t, "GET", "/socket/api/presence?topic=room:1", http.Header{"Authorization": {"Bearer k"}}, "")
	if status != 200 {
		t.Fatalf("presence API: %d %s", status, body)
	}
	if got := decodePresence(t, json.RawMessage(body)); fmt.Sprint(got.keys()) != "[alice]" || got["alice"].Metas[0]["phx_ref"] != aliceRef {
		t.Fatalf("presence API after leaves = %s", body)
	}
}

func TestPresenceAPIErrors(t *testing.T) {
	loadCaddyfile(t, site("channels {\n api_key k\n"+presenceRules+"\n}"))
	auth := http.Header{"Authorization": {"Bearer k"}}
	for _, tc := range []struct {
		method, path string
		hdr          http.Header
		status       int
	}{
		{"GET", "/socket/api/presence?topic=room:1", nil, 401},
		{"GET", "/socket/api/presence?topic=room:1", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"GET", "/socket/api/presence", auth, 400},
		{"POST", "/socket/api/presence?topic=room:1", auth, 405},
		{"GET", "/socket/api/presence?topic=nobody:here", auth, 200},
	} {
		status, body := httpDo(t, tc.method, tc.path, tc.hdr, "")
		if status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
		}
		if tc.status == 200 && strings.TrimSpace(body) != "{}" {
			t.Errorf("empty topic's presence = %q, want {}", body)
		}
	}
}

func TestPresenceDefaultKeyAndUntrackedChannels(t *testing.T) {
	loadCaddyfile(t, site("channels {\n api_key k\n id \"has(params.user) ? dyn(params.user) : null\"\n"+presenceRules+"\n}"))
	auth := http.Header{"Authorization": {"Bearer k"}}
	u := dial(t, "/socket", "vsn=2.0.0&user=u42", nil)
	u.joinWith("1", "1", "batched:x", `{}`)
	st := decodePresence(t, u.nextEvent("presence_state").Payload)
	if fmt.Sprint(st.keys()) != "[u42]" {
		t.Fatalf("default key of a socket with id: %v", st.keys())
	}
	anon := dial(t, "/socket", "vsn=2.0.0", nil)
	anon.joinWith("1", "1", "batched:x", `{}`)
	st = decodePresence(t, anon.nextEvent("presence_state").Payload)
	var anonKey string
	for _, k := range st.keys() {
		if k != "u42" {
			anonKey = k
		}
	}
	if !strings.HasPrefix(anonKey, "anon:") {
		t.Fatalf("anonymous socket's key = %v", st.keys())
	}
	// A channel without presence tracks nothing and sends no presence event.
	anon.joinWith("2", "2", "plain:x", `{}`)
	status, body := httpDo(t, "GET", "/socket/api/presence?topic=plain:x", auth, "")
	if status != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("presence of an untracked channel: %d %s", status, body)
	}
}

func TestPresenceDiffBatching(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+presenceRules+"\n}"))
	watcher := dial(t, "/socket", "vsn=2.0.0", nil)
	watcher.joinWith("1", "1", "batched:big", `{}`)
	watcher.nextEvent("presence_state")
	// Let the watcher's own join diff go out before the burst.
	watcher.nextEvent("presence_diff")
	const n = 20
	for i := 0; i < n; i++ {
		c := dial(t, "/socket", "vsn=2.0.0", nil)
		c.joinWith("1", "1", "batched:big", `{}`)
	}
	// 20 joins within one 300 ms window arrive in one or two diffs, not 20.
	seen, diffs := 0, 0
	for seen < n {
		d := decodeDiff(t, watcher.nextEvent("presence_diff").Payload)
		diffs++
		for _, m := range d.Joins {
			seen += len(m.Metas)
		}
	}
	if seen != n || diffs > 3 {
		t.Fatalf("%d joins arrived in %d diffs (want %d joins in at most 3 diffs)", seen, diffs, n)
	}
}

func TestPresenceWebhookKeyMetaAndUpdate(t *testing.T) {
	backend := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/join":
			fmt.Fprint(w, `{"status":"ok","assigns":{"user":"carol"},"presence":{"key":"user:carol","meta":{"status":"online","phx_ref":"spoofed"}}}`)
		case "/status":
			var in struct {
				Payload map[string]any `json:"payload"`
			}
			json.Unmarshal(body, &in)
			fmt.Fprintf(w, `{"reply":{"status":"ok"},"presence":{"meta":{"status":%q}}}`, in.Payload["status"])
		}
	})
	loadCaddyfile(t, site(fmt.Sprintf(`channels {
		channel team:* {
			join upstream %[1]s/join
			handle_in set_status upstream %[1]s/status
			presence {
				batch 0
			}
		}
	}`, backend.url)))
	c := dial(t, "/socket", "vsn=2.0.0", nil)
	c.joinWith("1", "1", "team:1", `{}`)
	st := decodePresence(t, c.nextEvent("presence_state").Payload)
	m := st["user:carol"].Metas
	if len(m) != 1 || m[0]["status"] != "online" || m[0]["phx_ref"] == "spoofed" {
		t.Fatalf("presence from the join webhook = %+v", st)
	}
	oldRef := m[0]["phx_ref"]
	// With batch 0 the own join diff went out before presence_state (it
	// was skipped above): the next diff is the update.

	c.send(`["1","2","team:1","set_status",{"status":"away"}]`)
	var d presenceDiff
	for {
		f := c.next()
		if f.Event == "presence_diff" {
			d = decodeDiff(t, f.Payload)
			break
		}
	}
	j, l := d.Joins["user:carol"].Metas, d.Leaves["user:carol"].Metas
	if len(j) != 1 || len(l) != 1 || j[0]["status"] != "away" || j[0]["phx_ref_prev"] != oldRef || l[0]["phx_ref"] != oldRef || j[0]["phx_ref"] == oldRef {
		t.Fatalf("update diff = %+v, want one join with phx_ref_prev %v and one leave of it", d, oldRef)
	}
}
