package integration

// Intercept on a channel that keeps history: intercepted pushes carry the
// message's position in their ref, a _since replay goes through the
// intercept for the joiner, and broadcasts held during a catch-up are
// intercepted too, with no gap and no duplicate.

import (
	"fmt"
	"testing"
)

const interceptHistoryRules = `
		api_key k
		assign user_id "params.user"
		channel ihist:* {
			join allow
			handle_in post broadcast
			history 2000
			intercept post {
				drop if "assigns.user_id == 'bob' && int(payload.i) % 5 == 0"
				set seen_by "assigns.user_id"
			}
		}`

// expectIntercepted reads the next "post" of c and checks it is message i
// as the intercept made it for user, with joinRef and a position ref.
func expectIntercepted(t *testing.T, c *client, joinRef, user string, i int) {
	t.Helper()
	f := c.nextEvent("post")
	_, n := position(t, f.Ref)
	want := fmt.Sprintf(`{"i":%d,"seen_by":%q}`, i, user)
	if n != i || fmt.Sprint(f.JoinRef) != joinRef || string(f.Payload) != want {
		t.Fatalf("%s: got join_ref %v, seq %d, payload %s; want %s, seq %d, %s", user, f.JoinRef, n, f.Payload, joinRef, i, want)
	}
}

func TestInterceptHistoryReplay(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+interceptHistoryRules+"\n}"))
	topic := uniqueTopic("ihist")
	alice := dial(t, "/socket", q("vsn", "2.0.0", "user", "alice"), nil)
	resp := joinResponse(t, alice.joinWith("7", "7", topic, `{}`))
	epoch, _ := position(t, resp["_position"])
	for i := 1; i <= 10; i++ {
		apiBroadcast(t, topic, "post", fmt.Sprintf(`{"i":%d}`, i))
	}
	for i := 1; i <= 10; i++ {
		expectIntercepted(t, alice, "7", "alice", i)
	}

	// Bob replays from the start: through the intercept, for him.
	bob := dial(t, "/socket", q("vsn", "2.0.0", "user", "bob"), nil)
	resp = joinResponse(t, bob.joinWith("3", "3", topic, fmt.Sprintf(`{"_since":"%s:0"}`, epoch)))
	if resp["_recovered"] != true {
		t.Fatalf("join with _since: %v", resp)
	}
	apiBroadcast(t, topic, "post", `{"i":11}`)
	for i := 1; i <= 11; i++ {
		if i%5 != 0 {
			expectIntercepted(t, bob, "3", "bob", i)
		}
	}
	expectIntercepted(t, alice, "7", "alice", 11)
}

func TestInterceptHistoryCatchUpUnderLoad(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+interceptHistoryRules+"\n}"))
	topic := uniqueTopic("ihist")
	pub := dial(t, "/socket", q("vsn", "2.0.0", "user", "pub"), nil)
	pub.joinWith("1", "1", topic, `{}`)
	first := dial(t, "/socket", q("vsn", "2.0.0", "user", "bob"), nil)
	resp := joinResponse(t, first.joinWith("1", "1", topic, `{}`))
	epoch, _ := position(t, resp["_position"])

	const total = 400
	done := pushPaced(pub, topic, total)
	// Bob reads a while, then loses his socket and rejoins from the last
	// position he saw while the publisher goes on.
	last := 0
	for last < 60 {
		f := first.nextEvent("post")
		_, n := position(t, f.Ref)
		if n <= last || n%5 == 0 {
			t.Fatalf("live stream: seq %d after %d", n, last)
		}
		last = n
	}
	first.conn.Close()
	awaitBroadcast(pub, last+20) // the publisher goes on meanwhile

	again := dial(t, "/socket", q("vsn", "2.0.0", "user", "bob"), nil)
	resp = joinResponse(t, again.joinWith("2", "2", topic, fmt.Sprintf(`{"_since":"%s:%d"}`, epoch, last)))
	if resp["_recovered"] != true {
		t.Fatalf("rejoin not recovered: %v", resp)
	}
	for i := last + 1; i <= total; i++ {
		if i%5 != 0 {
			expectIntercepted(t, again, "2", "bob", i)
		}
	}
	<-done
}
