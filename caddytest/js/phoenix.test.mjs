// Runs the stock phoenix.js client (npm phoenix 1.8.16, unmodified) against
// the channels handler. TestPhoenixJS in ../phoenixjs_test.go starts Caddy
// with the matching config and runs this file with:
//
//   CHANNELS_URL       ws://host:port/socket  rooms, refused joins, binary
//   CHANNELS_SHORT_URL ws://host:port/short   idle_timeout 1s, id rule, API
//   CHANNELS_AUTH_URL  ws://host:port/auth    connect if "auth_token == '1234'"
//   CHANNELS_API_KEY   the api_key of /short
//
// The last three default to siblings of CHANNELS_URL. Every test opens its
// own sockets, bounds every wait, and disconnects its sockets at the end.
// A failing test appends the phoenix.js log of its sockets (what the client
// pushed and what it received) to the assertion message.

import { test } from "node:test"
import assert from "node:assert/strict"
import { setTimeout as sleep } from "node:timers/promises"
import { WAIT, flush, TEST_TIMEOUT, show, Harness, scenario, within, connect, outcome, joinOK, nextEvent, collect, expectRefused } from "./harness.mjs"

const MAIN_URL = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const SHORT_URL = process.env.CHANNELS_SHORT_URL || sibling("/short")
const AUTH_URL = process.env.CHANNELS_AUTH_URL || sibling("/auth")
const API_KEY = process.env.CHANNELS_API_KEY || "phoenixjs-test-key"

// sibling returns MAIN_URL with its path replaced.
function sibling(path) {
  const u = new URL(MAIN_URL)
  u.pathname = path
  return u.toString()
}

// apiURL is the publish API of the socket mounted at wsURL.
function apiURL(wsURL) {
  const u = new URL(wsURL)
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/broadcast"
  return u.toString()
}

// bytes returns the bytes of an ArrayBuffer as an array of numbers.
function bytes(buf) {
  assert.ok(buf instanceof ArrayBuffer, `want an ArrayBuffer, got ${show(buf)}`)
  return Array.from(new Uint8Array(buf))
}

// publish posts one message to the HTTP publish API of the socket at wsURL.
async function publish(wsURL, topic, event, payload) {
  const res = await fetch(apiURL(wsURL), {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ topic, event, payload }),
    signal: AbortSignal.timeout(WAIT),
  })
  const body = await res.text()
  assert.equal(res.status, 202, `POST ${apiURL(wsURL)}: ${res.status} ${body}`)
}

scenario("connects, joins with a reply response and gets refused joins with their reasons", async (h) => {
  const s = h.socket("a", MAIN_URL, { params: { user: "alice" } })
  await connect(s, "socket")

  const room = s.channel("room:lobby")
  assert.deepEqual(await joinOK(room), { welcome: "lobby" })
  assert.equal(room.state, "joined")

  for (const [topic, params, reason] of [
    ["secret:plans", {}, "forbidden"],
    ["private:1", { password: "wrong" }, "unauthorized"],
    ["private:2", {}, "unauthorized"],
  ]) {
    const ch = s.channel(topic, params)
    const r = await outcome(ch.join(), `join ${topic}`)
    ch.leave() // stop phoenix.js from retrying the refused join
    assert.deepEqual(r, { status: "error", response: { reason } }, `join ${topic}`)
  }

  const priv = s.channel("private:3", { password: "letmein" })
  assert.deepEqual(await joinOK(priv), {})

  // The refusals did not affect the socket or the joined channel.
  assert.ok(s.isConnected())
  const echo = await outcome(room.push("ping", { still: "here" }), "ping after refusals")
  assert.deepEqual(echo, { status: "ok", response: { still: "here" } })
})

scenario("push to a reply rule receives ok with the pushed payload", async (h) => {
  const s = h.socket("a", MAIN_URL)
  await connect(s, "socket")
  const room = s.channel("room:echo")
  await joinOK(room)

  const payload = { body: "hello", n: 1, list: [1, "two", null], nested: { ok: true } }
  const r = await outcome(room.push("ping", payload), "ping reply")
  assert.deepEqual(r, { status: "ok", response: payload })
})

scenario("broadcast reaches every member, broadcast_from all but the sender", async (h) => {
  const a = h.socket("a", MAIN_URL)
  const b = h.socket("b", MAIN_URL)
  await Promise.all([connect(a, "socket a"), connect(b, "socket b")])
  const ca = a.channel("room:bcast")
  const cb = b.channel("room:bcast")
  await joinOK(ca)
  await joinOK(cb)

  const gotA = nextEvent(ca, "new_msg", "new_msg on a (sender)")
  const gotB = nextEvent(cb, "new_msg", "new_msg on b")
  const pushed = outcome(ca.push("new_msg", { body: "hi" }), "new_msg push reply")
  assert.deepEqual(await gotA, { body: "hi" })
  assert.deepEqual(await gotB, { body: "hi" })
  assert.deepEqual(await pushed, { status: "ok", response: {} })

  const typingA = collect(ca, "typing")
  const typingB = nextEvent(cb, "typing", "typing on b")
  const typed = outcome(ca.push("typing", { user: "a" }), "typing push reply")
  assert.deepEqual(await typingB, { user: "a" })
  assert.deepEqual(await typed, { status: "ok", response: {} })
  await flush(a) // b's copy was queued, so a's would have been
  assert.deepEqual(typingA, [], "broadcast_from delivered the event to its sender")
})

scenario("leave is acknowledged and later broadcasts are not delivered", async (h) => {
  const a = h.socket("a", MAIN_URL)
  const b = h.socket("b", MAIN_URL)
  await Promise.all([connect(a, "socket a"), connect(b, "socket b")])
  const ca = a.channel("room:leave")
  const cb = b.channel("room:leave")
  await joinOK(ca)
  await joinOK(cb)

  // Everything socket a receives on the topic, whatever phoenix.js does
  // with it once the channel is gone.
  const framesA = []
  a.onMessage((m) => { if (m.topic === "room:leave") framesA.push(m) })

  const leavePush = ca.leave()
  assert.deepEqual(await outcome(leavePush, "leave ok"), { status: "ok", response: {} })
  assert.equal(ca.state, "closed")

  // Wait for the server's own answer to phx_leave, so the broadcast below
  // is sent after the server has unsubscribed socket a.
  await within(WAIT, "the server's phx_reply to phx_leave", (resolve) => {
    const check = () => framesA.some((m) => m.event === "phx_reply" && m.ref === leavePush.ref)
    if (check()) return resolve()
    const ref = a.onMessage(() => { if (check()) { a.off([ref]); resolve() } })
  })
  const leaveReply = framesA.find((m) => m.event === "phx_reply" && m.ref === leavePush.ref)
  assert.equal(leaveReply.payload.status, "ok", `leave reply ${show(leaveReply)}`)

  const own = nextEvent(cb, "new_msg", "new_msg on b")
  assert.deepEqual(await outcome(cb.push("new_msg", { after: "leave" }), "b's push"), { status: "ok", response: {} })
  assert.deepEqual(await own, { after: "leave" })
  await flush(a) // b's copy was queued, so a leaked one would have been
  const leaked = framesA.filter((m) => m.event === "new_msg")
  assert.deepEqual(leaked, [], "a broadcast reached a socket after it left the topic")
})

scenario("heartbeats keep a socket alive past the idle timeout", async (h) => {
  const s = h.socket("hb", SHORT_URL, { params: { user: "hb" }, heartbeatIntervalMs: 300 })
  let opens = 0, closes = 0, errors = 0, heartbeatReplies = 0
  s.onOpen(() => opens++)
  s.onClose(() => closes++)
  s.onError(() => errors++)
  s.onMessage((m) => {
    if (m.topic === "phoenix" && m.event === "phx_reply" && m.payload.status === "ok") heartbeatReplies++
  })
  await connect(s, "socket")
  const room = s.channel("room:hb")
  await joinOK(room)

  await sleep(2500) // 2.5 × idle_timeout
  assert.equal(closes, 0, "socket closed although it sent heartbeats")
  assert.equal(errors, 0, "socket errored")
  assert.equal(opens, 1, "socket reconnected")
  assert.ok(heartbeatReplies >= 4, `only ${heartbeatReplies} heartbeat replies in 2.5 s at 300 ms`)
  assert.ok(s.isConnected())
  assert.equal(room.state, "joined")
  assert.deepEqual(await outcome(room.push("ping", { alive: true }), "ping"), { status: "ok", response: { alive: true } })
})

scenario("an idle socket is closed by the server and phoenix.js reconnects", async (h) => {
  const s = h.socket("idle", SHORT_URL, { params: { user: "idle" }, heartbeatIntervalMs: 10000 })
  let opens = 0
  const secondOpen = within(WAIT, "the reconnect (second open)", (resolve) => {
    s.onOpen(() => { if (++opens === 2) resolve() })
  })
  const closed = within(WAIT, "the server to close the idle socket", (resolve) => {
    s.onClose((ev) => resolve({ code: ev.code, at: Date.now() }))
  })
  await connect(s, "socket")
  const openedAt = Date.now()

  const { code, at } = await closed
  assert.ok(at - openedAt >= 900, `closed after ${at - openedAt} ms, before the 1 s idle timeout`)
  assert.equal(code, 1001, "idle close code (1001 going away, so every client reconnects)")
  await secondOpen
  assert.ok(s.isConnected())
})

scenario("after the server closes the socket, phoenix.js reconnects, rejoins and gets later broadcasts", async (h) => {
  const s = h.socket("rejoin", SHORT_URL, { params: { user: "rejoin" }, heartbeatIntervalMs: 10000 })
  await connect(s, "socket")
  const ch = s.channel("room:rejoin", { hello: "again" })
  let joins = 0
  const rejoined = within(WAIT + 2000, "the automatic rejoin after reconnect", (resolve) => {
    ch.joinPush.receive("ok", () => { if (++joins === 2) resolve() })
  })
  const closed = within(WAIT, "the server to close the idle socket", (resolve) => s.onClose(resolve))
  await joinOK(ch)
  const firstJoinRef = ch.joinRef()

  await closed
  await rejoined
  assert.equal(ch.state, "joined")
  assert.notEqual(ch.joinRef(), firstJoinRef, "the rejoin should use a new join_ref")

  const news = nextEvent(ch, "news", "news after the rejoin")
  await publish(SHORT_URL, "room:rejoin", "news", { n: 1 })
  assert.deepEqual(await news, { n: 1 })
})

scenario("authToken is accepted by connect if and a wrong token never opens", async (h) => {
  const good = h.socket("good", AUTH_URL, { authToken: "1234" })
  await connect(good, "socket with authToken 1234")
  assert.equal(good.conn.protocol, "phoenix", "negotiated subprotocol")
  const room = good.channel("room:auth")
  await joinOK(room)

  for (const token of ["nope", undefined]) {
    const name = token ? `bad-${token}` : "no-token"
    const bad = h.socket(name, AUTH_URL, token ? { authToken: token } : {})
    await expectRefused(bad, name)
  }
})

scenario("binary pushes get binary replies and binary broadcasts", async (h) => {
  const a = h.socket("a", MAIN_URL)
  const b = h.socket("b", MAIN_URL)
  await Promise.all([connect(a, "socket a"), connect(b, "socket b")])
  const ca = a.channel("room:bin")
  const cb = b.channel("room:bin")
  await joinOK(ca)
  await joinOK(cb)

  const r = await outcome(ca.push("bin", new Uint8Array([1, 2, 3]).buffer), "binary reply")
  assert.equal(r.status, "ok", `binary push: ${show(r)}`)
  assert.deepEqual(bytes(r.response), [1, 2, 3])

  const gotA = nextEvent(ca, "new_msg", "binary new_msg on a")
  const gotB = nextEvent(cb, "new_msg", "binary new_msg on b")
  const pushed = outcome(ca.push("new_msg", new Uint8Array([0, 255, 7]).buffer), "binary broadcast push reply")
  assert.deepEqual(bytes(await gotA), [0, 255, 7])
  assert.deepEqual(bytes(await gotB), [0, 255, 7])
  assert.equal((await pushed).status, "ok")
})
