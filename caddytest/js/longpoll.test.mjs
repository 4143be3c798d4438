// The stock phoenix.js client (npm phoenix 1.8.16, unmodified) over the
// LongPoll transport (Node's fetch: no shim needed). TestPhoenixJSLongPoll
// in ../phoenixjs_longpoll_test.go starts Caddy with the matching config
// and runs this file with:
//
//   CHANNELS_URL           ws://host:port/socket    rooms, presence, history, id rule, API
//   CHANNELS_FALLBACK_URL  ws://host:port/fallback  the WebSocket upgrade answers 403
//   CHANNELS_API_KEY       the api_key of /socket
//
// LongPoll clients are given the ws:// URL, as apps give it: phoenix.js
// turns it into http:// itself.

import assert from "node:assert/strict"
import { LongPoll, Presence } from "phoenix"
import { WAIT, flush, show, scenario, connect, outcome, joinOK, nextEvent, until, unique, keysOf, within } from "./harness.mjs"

const URL_ = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const FALLBACK_URL = process.env.CHANNELS_FALLBACK_URL || "ws://localhost:9080/fallback"
const API_KEY = process.env.CHANNELS_API_KEY || "phoenixjs-longpoll-key"

// api posts to the API of /socket.
async function api(path, body) {
  const u = new URL(URL_)
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + path
  const res = await fetch(u, {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT),
  })
  assert.equal(res.status, 202, `POST ${path}: ${res.status} ${await res.text()}`)
}

// lp creates a LongPoll socket in h.
function lp(h, name, opts = {}) {
  return h.socket(name, URL_, { transport: LongPoll, ...opts })
}

scenario("longpoll: joins ok and refused, push and reply, heartbeat", async (h) => {
  const s = lp(h, "a", { params: { user: "alice" } })
  await connect(s, "longpoll socket")
  assert.equal(s.transport, LongPoll)
  const ch = s.channel("room:lobby")
  assert.deepEqual(await joinOK(ch), { welcome: "lobby" })
  const r = await outcome(ch.push("ping", { n: 1 }), "ping reply")
  assert.deepEqual(r, { status: "ok", response: { n: 1 } })
  const priv = await outcome(s.channel("private:x", { password: "nope" }).join(), "refused join")
  assert.deepEqual(priv, { status: "error", response: { reason: "unauthorized" } })
  const ok = await outcome(s.channel("private:y", { password: "letmein" }).join(), "allowed join")
  assert.equal(ok.status, "ok")
  const secret = await outcome(s.channel("secret:z").join(), "denied join")
  assert.deepEqual(secret, { status: "error", response: { reason: "forbidden" } })
  await flush(s)
})

scenario("longpoll: broadcasts reach WebSocket and LongPoll subscribers of one topic, in order", async (h) => {
  const topic = unique("room")
  const a = lp(h, "lp")
  const b = h.socket("ws", URL_)
  await connect(a, "longpoll")
  await connect(b, "websocket")
  const ca = a.channel(topic), cb = b.channel(topic)
  await joinOK(ca); await joinOK(cb)
  const gotA = [], gotB = []
  ca.on("new_msg", (p) => gotA.push(p.n))
  cb.on("new_msg", (p) => gotB.push(p.n))
  for (let n = 1; n <= 20; n++) (n % 2 ? ca : cb).push("new_msg", { n })
  const want = Array.from({ length: 20 }, (_, i) => i + 1)
  await until(() => gotA.length >= 20 && gotB.length >= 20, `20 broadcasts on both (lp ${gotA.length}, ws ${gotB.length})`)
  await flush(a); await flush(b)
  // Each sender's pushes keep their order; the two senders interleave.
  assert.deepEqual(gotA.slice().sort((x, y) => x - y), want)
  assert.deepEqual(gotB.slice().sort((x, y) => x - y), want)
  assert.deepEqual(gotA.filter((n) => n % 2), gotB.filter((n) => n % 2))
  assert.deepEqual(gotA.filter((n) => n % 2 === 0), gotB.filter((n) => n % 2 === 0))
})

scenario("longpoll: a binary push travels as a base64 line and reaches a WebSocket subscriber as binary", async (h) => {
  const topic = unique("room")
  const s = lp(h, "bin")
  const w = h.socket("ws", URL_)
  await connect(s, "longpoll")
  await connect(w, "websocket")
  const ch = s.channel(topic), wch = w.channel(topic)
  await joinOK(ch); await joinOK(wch)
  const got = nextEvent(wch, "bin", "the binary broadcast on the websocket")
  const r = await outcome(ch.push("bin", new Uint8Array([1, 2, 3]).buffer), "binary push reply")
  assert.equal(r.status, "ok", show(r))
  const payload = await got
  assert.ok(payload instanceof ArrayBuffer, `want an ArrayBuffer, got ${show(payload)}`)
  assert.deepEqual(Array.from(new Uint8Array(payload)), [1, 2, 3])
  // LongPoll carries text frames only: the sender's own copy of the binary
  // broadcast is not sent to it, and nothing else is either.
  await flush(s)
})

scenario("longpoll: presence lists converge across a WebSocket and a LongPoll client", async (h) => {
  const topic = unique("pres")
  const names = { lp: "lena", ws: "walt" }
  const pres = {}
  for (const [kind, name] of Object.entries(names)) {
    const s = kind === "lp" ? lp(h, name) : h.socket(name, URL_)
    await connect(s, name)
    const ch = s.channel(topic, { name })
    pres[kind] = new Presence(ch)
    pres[kind].ch = ch
    await joinOK(ch)
  }
  for (const kind of ["lp", "ws"]) {
    await until(() => show(keysOf(pres[kind])) === show(["lena", "walt"]), `${kind}'s list to hold both`)
  }
  await within(WAIT, "walt's leave", (resolve) => pres.ws.ch.leave().receive("ok", resolve))
  await until(() => show(keysOf(pres.lp)) === show(["lena"]), "the longpoll list without walt")
})

scenario("longpoll: after its session is lost, a client rejoins with _since and gets every message once, in order", async (h) => {
  const topic = unique("hist")
  const s = lp(h, "reader", { params: { user: "reader" }, reconnectAfterMs: () => 20, rejoinAfterMs: () => 20 })
  await connect(s, "reader")
  let last = null
  const got = [], responses = []
  const ch = s.channel(topic, () => (last ? { _since: last } : {}))
  ch.on("post", (payload, ref) => { got.push(payload.n); last = ref })
  ch.join().receive("ok", (resp) => { responses.push(resp); if (!last) last = resp._position })
  await until(() => responses.length === 1, "the first join")
  const N = 120
  for (let n = 1; n <= N; n++) {
    await api("/api/broadcast", { topic, event: "post", payload: { n } })
    if (n === 40) {
      // The session is cut on the server (as a node restart would): the
      // next poll gets 410, phoenix.js opens a new session and rejoins.
      await api("/api/disconnect", { id: "user_socket:reader" })
    }
  }
  await until(() => got.length >= N, `all ${N} messages (got ${got.length})`)
  await flush(s)
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1), "every message exactly once, in order")
  assert.ok(responses.length >= 2, `rejoined (join replies: ${show(responses)})`)
  for (const r of responses.slice(1)) assert.equal(r._recovered, true, `rejoin recovered: ${show(r)}`)
})

scenario("longpoll: a disconnect by id closes the session; phoenix.js reconnects on a new one (after the 410)", async (h) => {
  const s = lp(h, "kicked", { params: { user: "kicked" }, reconnectAfterMs: () => 20 })
  const closes = []
  s.onClose((ev) => closes.push(ev && ev.code))
  await connect(s, "kicked")
  const ch = s.channel("room:kick")
  await joinOK(ch)
  const before = s.conn.token
  let opens = 0
  s.onOpen(() => { opens++ })
  await api("/api/disconnect", { id: "user_socket:kicked" })
  await until(() => closes.includes(3410), `a session_gone close (closes ${show(closes)})`)
  await until(() => opens >= 1 && ch.state === "joined", "a new session with the channel rejoined")
  assert.notEqual(s.conn.token, before, "a new session token")
  const r = await outcome(ch.push("ping", { again: true }), "ping on the new session")
  assert.deepEqual(r, { status: "ok", response: { again: true } })
})

scenario("longPollFallbackMs: a client whose WebSocket upgrade is refused falls back to LongPoll and joins", async (h) => {
  const s = h.socket("fallback", FALLBACK_URL, { longPollFallbackMs: 200 })
  await connect(s, "fallback socket").catch(() => {}) // the refused upgrade may report an error first
  await until(() => s.transport === LongPoll && s.isConnected(), "the LongPoll fallback to open", WAIT * 2)
  const ch = s.channel("room:fb")
  assert.deepEqual(await joinOK(ch), { welcome: "fb" })
  assert.deepEqual(await outcome(ch.push("ping", { via: "longpoll" }), "ping"), { status: "ok", response: { via: "longpoll" } })
})
