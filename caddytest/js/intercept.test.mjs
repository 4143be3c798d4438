// Runs the stock phoenix.js client (npm phoenix 1.8.16, unmodified) against
// a channels handler whose room:* channel intercepts new_msg and bin (see
// docs/intercept.md). TestPhoenixJSIntercept in ../phoenixjs_intercept_test.go
// starts Caddy with the matching config and runs this file with:
//
//   CHANNELS_URL      ws://host:port/socket
//   CHANNELS_API_KEY  the api_key of that mount
//
// Intercepted events reach phoenix.js as pushes carrying the channel's
// join_ref, which phoenix.js checks (isMember) before calling channel.on
// handlers: these tests show that the handlers fire with each subscriber's
// own payload. Every test opens its own sockets, bounds every wait, and
// disconnects its sockets at the end.

import assert from "node:assert/strict"
import { flush, WAIT, show, scenario, connect, outcome, joinOK, nextEvent, collect } from "./harness.mjs"

const SOCKET_URL = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const API_KEY = process.env.CHANNELS_API_KEY || "intercept-js-key"

// apiURL is the publish API of SOCKET_URL.
function apiURL() {
  const u = new URL(SOCKET_URL)
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/broadcast"
  return u.toString()
}

// publish posts one message to the publish API.
async function publish(topic, event, payload) {
  const res = await fetch(apiURL(), {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ topic, event, payload }),
    signal: AbortSignal.timeout(WAIT),
  })
  const body = await res.text()
  assert.equal(res.status, 202, `POST ${apiURL()}: ${res.status} ${body}`)
}

// room connects one socket per user and joins each to topic.
async function room(h, topic, users) {
  const chans = {}
  for (const user of users) {
    const s = h.socket(user, SOCKET_URL, { params: { user } })
    await connect(s, `${user}'s socket`)
    chans[user] = s.channel(topic)
    await joinOK(chans[user])
  }
  return chans
}

scenario("channel.on receives the intercepted push with its own payload; a muted subscriber gets nothing", async (h) => {
  const ch = await room(h, "room:js-intercept", ["alice", "bob", "carol"])
  const carolGot = collect(ch.carol, "new_msg")
  const gotA = nextEvent(ch.alice, "new_msg", "new_msg on alice")
  const gotB = nextEvent(ch.bob, "new_msg", "new_msg on bob")

  const r = await outcome(ch.alice.push("new_msg", { user_id: "alice", body: "hi", secret: "s", muted_by: ["carol"] }), "push reply")
  assert.equal(r.status, "ok", `push: ${show(r)}`)

  assert.deepEqual(await gotA, { user_id: "alice", body: "hi", muted_by: ["carol"], mine: true })
  assert.deepEqual(await gotB, { user_id: "alice", body: "hi", muted_by: ["carol"], mine: false })
  await flush(ch.carol.socket) // bob's copy was queued, so carol's would have been
  assert.deepEqual(carolGot, [], `carol is muted: ${show(carolGot)}`)
})

scenario("events that are not intercepted arrive unchanged", async (h) => {
  const ch = await room(h, "room:js-plain", ["alice", "bob"])
  const gotA = nextEvent(ch.alice, "other")
  const gotB = nextEvent(ch.bob, "other")
  await publish("room:js-plain", "other", { secret: "kept", muted_by: ["bob"] })
  assert.deepEqual(await gotA, { secret: "kept", muted_by: ["bob"] })
  assert.deepEqual(await gotB, { secret: "kept", muted_by: ["bob"] })
})

scenario("intercepted binary payloads reach phoenix.js as ArrayBuffers", async (h) => {
  const ch = await room(h, "room:js-bin", ["alice", "bob"])
  const bobGot = collect(ch.bob, "bin")
  const gotA = nextEvent(ch.alice, "bin")
  const r = await outcome(ch.alice.push("bin", new Uint8Array([9, 8, 7]).buffer), "binary push reply")
  assert.equal(r.status, "ok", `binary push: ${show(r)}`)
  const buf = await gotA
  assert.ok(buf instanceof ArrayBuffer, `want an ArrayBuffer, got ${show(buf)}`)
  assert.deepEqual(Array.from(new Uint8Array(buf)), [9, 8, 7])
  await flush(ch.bob.socket) // alice's copy was queued, so bob's would have been
  assert.deepEqual(bobGot, [], `bob is dropped by "drop if": ${show(bobGot)}`)
})

scenario("after a rejoin, pushes carry the new join_ref and still reach channel.on", async (h) => {
  const ch = await room(h, "room:js-rejoin", ["alice"])
  const left = outcome(ch.alice.leave(), "leave")
  assert.equal((await left).status, "ok")
  const again = ch.alice.socket.channel("room:js-rejoin")
  await joinOK(again)
  const got = nextEvent(again, "new_msg")
  await publish("room:js-rejoin", "new_msg", { user_id: "alice", body: "back" })
  assert.deepEqual(await got, { user_id: "alice", body: "back", mine: true })
})
