// Runs the stock phoenix.js client (npm phoenix 1.8.16, unmodified) against
// a channels handler whose connect, join and handle_in are decided by the
// example chat app (examples/backend/chat) over webhooks, with a
// declarative `handle_in typing broadcast_from` mixed in.
// TestPhoenixJSWebhooks in ../phoenixjs_webhooks_test.go starts the app and
// Caddy and runs this file with:
//
//   CHANNELS_URL          ws://host:port/socket, fronting the chat app
//   CHANNELS_TOKEN_ALICE  a login token of alice (member of private-staff)
//   CHANNELS_TOKEN_CAROL  a login token of carol (not a member)
//
// The Go test then checks the leave notifications the app received: keep
// the topics below in step with it (room:wh-leave is left, room:wh-bye is
// stopped by the app, room:lobby stays joined until the sockets close).
// Every test opens its own sockets, bounds every wait, and disconnects its
// sockets at the end. A failing test appends the phoenix.js log of its
// sockets to the assertion message.

import { test } from "node:test"
import assert from "node:assert/strict"
import { WAIT, flush, TEST_TIMEOUT, show, Harness, scenario, within, connect, outcome, joinOK, nextEvent, collect, expectRefused } from "./harness.mjs"

const SOCKET_URL = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const ALICE = process.env.CHANNELS_TOKEN_ALICE
const CAROL = process.env.CHANNELS_TOKEN_CAROL

// ChatHarness opens every socket on SOCKET_URL; user authenticates one.
class ChatHarness extends Harness {
  socket(name, opts = {}) {
    return super.socket(name, SOCKET_URL, opts)
  }

  user(name, token) {
    return this.socket(name, { params: { token } })
  }
}

// chatScenario is scenario with a ChatHarness and the tokens required.
function chatScenario(name, body) {
  scenario(name, async (h) => {
    assert.ok(ALICE && CAROL, "CHANNELS_TOKEN_ALICE and CHANNELS_TOKEN_CAROL must be set")
    await body(h)
  }, () => new ChatHarness())
}

// lobby connects alice and carol and joins both to room:lobby.
async function lobby(h) {
  const a = h.user("alice", ALICE)
  const c = h.user("carol", CAROL)
  await Promise.all([connect(a, "alice's socket"), connect(c, "carol's socket")])
  const ca = a.channel("room:lobby")
  const cc = c.channel("room:lobby")
  assert.deepEqual(await joinOK(ca), { joined: "room:lobby" })
  assert.deepEqual(await joinOK(cc), { joined: "room:lobby" })
  return { ca, cc }
}

chatScenario("connect webhook: a valid token opens the socket, a bad one never does", async (h) => {
  await connect(h.user("alice", ALICE), "socket with alice's token in params")
  await connect(h.socket("alice-auth", { authToken: ALICE }), "socket with alice's token as authToken")

  // A forged signature, a malformed token and no token at all.
  const forged = ALICE.slice(0, ALICE.lastIndexOf(".") + 1) + "AAAA"
  for (const [name, params] of [["forged", { token: forged }], ["garbage", { token: "nope" }], ["no-token", {}]]) {
    const bad = h.socket(name, { params })
    await expectRefused(bad, name)
  }
})

chatScenario("join webhook: the app's response, and its refusal of a non-member", async (h) => {
  const a = h.user("alice", ALICE)
  const c = h.user("carol", CAROL)
  await Promise.all([connect(a, "alice's socket"), connect(c, "carol's socket")])

  const room = a.channel("room:lobby")
  assert.deepEqual(await joinOK(room), { joined: "room:lobby" })
  assert.equal(room.state, "joined")

  const priv = c.channel("room:private-staff")
  const r = await outcome(priv.join(), "carol's join of room:private-staff")
  priv.leave() // stop phoenix.js from retrying the refused join
  assert.deepEqual(r, { status: "error", response: { reason: "not a member" } })

  // The refusal affected neither carol's socket nor alice's channel.
  assert.ok(c.isConnected())
  const who = await outcome(room.push("whoami", {}), "whoami after the refusal")
  assert.deepEqual(who, { status: "ok", response: { user: "alice", room: "lobby" } })
})

chatScenario("handle_in webhook: broadcast to both, whoami from assigns, unknown events refused", async (h) => {
  const { ca, cc } = await lobby(h)

  const gotA = nextEvent(ca, "new_msg", "new_msg on alice's socket (the sender)")
  const gotC = nextEvent(cc, "new_msg", "new_msg on carol's socket")
  const pushed = outcome(ca.push("new_msg", { body: "hi" }), "new_msg reply")
  assert.deepEqual(await pushed, { status: "ok", response: {} })
  assert.deepEqual(await gotA, { user: "alice", body: "hi" })
  assert.deepEqual(await gotC, { user: "alice", body: "hi" })

  assert.deepEqual(await outcome(cc.push("whoami", {}), "carol's whoami"),
    { status: "ok", response: { user: "carol", room: "lobby" } })
  assert.deepEqual(await outcome(ca.push("whoami", {}), "alice's whoami"),
    { status: "ok", response: { user: "alice", room: "lobby" } })

  assert.deepEqual(await outcome(ca.push("no_such_event", {}), "reply to an unknown event"),
    { status: "error", response: { reason: "unknown event" } })
  assert.deepEqual(await outcome(ca.push("new_msg", {}), "reply to new_msg without a body"),
    { status: "error", response: { reason: "body must be a non-empty string" } })
})

chatScenario("handle_in webhook: a push answer reaches the sender only", async (h) => {
  const { ca, cc } = await lobby(h)
  const replies = []
  ca.push("ping_me", { n: 1 }).receive("ok", (r) => replies.push(r)).receive("error", (r) => replies.push(r))
  const pongsC = collect(cc, "pong")
  assert.deepEqual(await nextEvent(ca, "pong", "pong on alice's socket"), { n: 1 })
  await flush(cc.socket) // the webhook answer was handled before alice's pong
  assert.deepEqual(pongsC, [], "the push reached another socket")
  assert.deepEqual(replies, [], "ping_me is noreply, but got a reply")
})

chatScenario("declarative typing broadcast_from reaches the other socket only", async (h) => {
  const { ca, cc } = await lobby(h)
  const typingA = collect(ca, "typing")
  const typingC = nextEvent(cc, "typing", "typing on carol's socket")
  const typed = outcome(ca.push("typing", { user: "alice" }), "typing reply")
  assert.deepEqual(await typingC, { user: "alice" })
  assert.deepEqual(await typed, { status: "ok", response: {} })
  await flush(ca.socket) // carol's copy was queued, so alice's would have been
  assert.deepEqual(typingA, [], "broadcast_from delivered typing to its sender")
})

chatScenario("handle_in webhook: bye stops the channel from the server", async (h) => {
  const a = h.user("alice", ALICE)
  await connect(a, "alice's socket")
  const ch = a.channel("room:wh-bye")
  assert.deepEqual(await joinOK(ch), { joined: "room:wh-bye" })

  const closed = within(WAIT, "the server to close room:wh-bye (onClose)", (resolve) => ch.onClose(resolve))
  const bye = outcome(ch.push("bye", {}), "bye reply")
  assert.deepEqual(await bye, { status: "ok", response: {} })
  await closed
  assert.equal(ch.state, "closed")
  await flush(a) // frames the server queued after the phx_close have arrived
  assert.equal(ch.state, "closed", "phoenix.js rejoined a channel the server closed")
  assert.ok(a.isConnected(), "stopping a channel closed the socket")
})

chatScenario("channel.leave() is acknowledged (the Go side checks the leave webhook)", async (h) => {
  const a = h.user("alice", ALICE)
  await connect(a, "alice's socket")
  const ch = a.channel("room:wh-leave")
  assert.deepEqual(await joinOK(ch), { joined: "room:wh-leave" })
  assert.deepEqual(await outcome(ch.leave(), "leave reply"), { status: "ok", response: {} })
  assert.equal(ch.state, "closed")
})
