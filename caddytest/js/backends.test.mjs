// One phoenix.js scenario run against each example chat backend
// (examples/backend in Go, examples/backend-node, examples/backend-python)
// behind the channels handler; TestBackends in ../backends_test.go starts
// the app and Caddy and runs this file once per app with:
//
//   CHANNELS_URL          ws://host:port/socket, fronting the app
//   CHANNELS_TOKEN_ALICE  a login token of alice (member of private-staff)
//   CHANNELS_TOKEN_CAROL  a login token of carol (not a member)
//
// The Go test then checks the leave notifications in the app's log: keep
// the topics below in step with it (room:bk-leave is left, room:bk-bye is
// stopped by the app, room:lobby stays joined until the sockets close,
// room:private-staff is refused).

import assert from "node:assert/strict"
import { flush, WAIT, Harness, scenario, within, connect, outcome, joinOK, nextEvent, collect, expectRefused } from "./harness.mjs"

const SOCKET_URL = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const ALICE = process.env.CHANNELS_TOKEN_ALICE
const CAROL = process.env.CHANNELS_TOKEN_CAROL

class ChatHarness extends Harness {
  user(name, token) {
    return super.socket(name, SOCKET_URL, { params: { token } })
  }
}

function chatScenario(name, body) {
  scenario(name, async (h) => {
    assert.ok(ALICE && CAROL, "CHANNELS_TOKEN_ALICE and CHANNELS_TOKEN_CAROL must be set")
    await body(h)
  }, () => new ChatHarness())
}

chatScenario("the chat app, end to end", async (h) => {
  // connect: the app's tokens open sockets; a forged one never does.
  const forged = ALICE.slice(0, ALICE.lastIndexOf(".") + 1) + "AAAA"
  await expectRefused(h.user("forged", forged), "forged-token")
  const a = h.user("alice", ALICE)
  const c = h.user("carol", CAROL)
  await Promise.all([connect(a, "alice's socket"), connect(c, "carol's socket")])

  // join: the app's response; a non-member is refused.
  const ca = a.channel("room:lobby")
  const cc = c.channel("room:lobby")
  assert.deepEqual(await joinOK(ca), { joined: "room:lobby" })
  assert.deepEqual(await joinOK(cc), { joined: "room:lobby" })
  const priv = c.channel("room:private-staff")
  const refused = await outcome(priv.join(), "carol's join of room:private-staff")
  priv.leave() // stop phoenix.js from retrying the refused join
  assert.deepEqual(refused, { status: "error", response: { reason: "not a member" } })

  // push with reply, and a broadcast reaching the other client.
  const gotA = nextEvent(ca, "new_msg", "new_msg on alice's socket")
  const gotC = nextEvent(cc, "new_msg", "new_msg on carol's socket")
  assert.deepEqual(await outcome(ca.push("new_msg", { body: "hi <&>" }), "new_msg reply"), { status: "ok", response: {} })
  assert.deepEqual(await gotA, { user: "alice", body: "hi <&>" })
  assert.deepEqual(await gotC, { user: "alice", body: "hi <&>" })

  // broadcast_from: everyone but the sender.
  const shoutsA = collect(ca, "shout")
  const shoutC = nextEvent(cc, "shout", "shout on carol's socket")
  assert.deepEqual(await outcome(ca.push("shout", { body: "HEY" }), "shout reply"), { status: "ok", response: {} })
  assert.deepEqual(await shoutC, { user: "alice", body: "HEY" })
  await flush(a)
  assert.deepEqual(shoutsA, [], "shout reached its sender")

  // assigns: rename, then whoami and new_msg see the nick.
  assert.deepEqual(await outcome(ca.push("rename", { nick: " Al " }), "rename reply"), { status: "ok", response: { nick: "Al" } })
  assert.deepEqual(await outcome(ca.push("whoami", {}), "whoami reply"),
    { status: "ok", response: { user: "alice", room: "lobby", nick: "Al" } })
  assert.deepEqual(await outcome(cc.push("whoami", {}), "carol's whoami"),
    { status: "ok", response: { user: "carol", room: "lobby" } })
  const nicked = nextEvent(cc, "new_msg", "new_msg with a nick")
  await outcome(ca.push("new_msg", { body: "again" }), "second new_msg reply")
  assert.deepEqual(await nicked, { user: "alice", nick: "Al", body: "again" })

  // push: to the sender only, no reply.
  const pongsC = collect(cc, "pong")
  const replies = []
  ca.push("ping_me", { n: 1 }).receive("ok", (r) => replies.push(r)).receive("error", (r) => replies.push(r))
  assert.deepEqual(await nextEvent(ca, "pong", "pong on alice's socket"), { n: 1 })
  await flush(c)
  assert.deepEqual(pongsC, [], "pong reached another socket")
  assert.deepEqual(replies, [], "ping_me is noreply, but got a reply")

  // echo: JSON and binary round trips; errors.
  const payload = { s: "é😀\u2028", n: [1.5, 0, 1e21, 1e-7], o: { b: 1, a: null } }
  assert.deepEqual(await outcome(ca.push("echo", payload), "echo reply"), { status: "ok", response: payload })
  const bin = await outcome(ca.push("echo", new Uint8Array([0, 1, 255]).buffer), "binary echo reply")
  assert.equal(bin.status, "ok")
  assert.deepEqual(Array.from(new Uint8Array(bin.response)), [0, 1, 255])
  assert.deepEqual(await outcome(ca.push("dance", {}), "unknown event"), { status: "error", response: { reason: "unknown event" } })
  assert.deepEqual(await outcome(ca.push("new_msg", { body: " " }), "blank new_msg"),
    { status: "error", response: { reason: "body must be a non-empty string" } })

  // declarative typing never reaches the app but still works.
  const typingC = nextEvent(cc, "typing", "typing on carol's socket")
  await outcome(ca.push("typing", { user: "alice" }), "typing reply")
  assert.deepEqual(await typingC, { user: "alice" })

  // stop: bye closes the channel from the server (no leave webhook).
  const bye = a.channel("room:bk-bye")
  assert.deepEqual(await joinOK(bye), { joined: "room:bk-bye" })
  const closed = within(WAIT, "the server to close room:bk-bye", (resolve) => bye.onClose(resolve))
  assert.deepEqual(await outcome(bye.push("bye", {}), "bye reply"), { status: "ok", response: {} })
  await closed

  // leave: acknowledged; the Go side checks the app got the notification.
  const left = a.channel("room:bk-leave")
  assert.deepEqual(await joinOK(left), { joined: "room:bk-leave" })
  assert.deepEqual(await outcome(left.leave(), "leave reply"), { status: "ok", response: {} })
  assert.ok(a.isConnected() && c.isConnected())
})
