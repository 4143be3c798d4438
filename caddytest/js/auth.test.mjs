// Authentication at the edge (auth jwt) and the message limit with the
// stock phoenix.js client (npm phoenix 1.8.16, unmodified).
// TestPhoenixJSAuth in ../phoenixjs_auth_test.go starts Caddy with the
// matching config and runs this file with:
//
//   CHANNELS_URL       ws://host:port/<mount>  auth jwt (HS256), limit messages 3/1h,
//                                              room:* joins reply {sub, n} from the claims
//   CHANNELS_TOKEN_URL http://127.0.0.1:port/token?sub=…&ttl=<seconds>
//                      signs a fresh HS256 token (claims sub, n = a sequence
//                      number, exp = now + ttl) on every call
//
// Every wait is bounded; a failing test appends the phoenix.js log.

import assert from "node:assert/strict"
import { WAIT, flush, show, scenario, within, connect, outcome, joinOK, collect, until, unique, expectRefused } from "./harness.mjs"

const URL_ = process.env.CHANNELS_URL || "ws://localhost:9080/jsauth"
const TOKEN_URL = process.env.CHANNELS_TOKEN_URL
// MESSAGE_LIMIT is the mount's limit messages n.
const MESSAGE_LIMIT = 3

// token asks the Go test for a fresh token.
async function token(sub, ttl) {
  assert.ok(TOKEN_URL, "CHANNELS_TOKEN_URL is not set")
  const u = new URL(TOKEN_URL)
  u.searchParams.set("sub", sub)
  u.searchParams.set("ttl", String(ttl))
  const res = await fetch(u, { signal: AbortSignal.timeout(WAIT) })
  const body = await res.text()
  assert.equal(res.status, 200, `GET ${u}: ${res.status} ${body}`)
  return body
}

// claimsOf decodes a token's claims (no verification: for assertions).
function claimsOf(tok) {
  return JSON.parse(Buffer.from(tok.split(".")[1], "base64url").toString())
}

scenario("a client over its message limit gets error replies while a neighbour gets every accepted broadcast", async (h) => {
  const topic = unique("room")
  const a = h.socket("a", URL_, { params: { token: await token("alice", 3600) } })
  const b = h.socket("b", URL_, { params: { token: await token("bob", 3600) } })
  await Promise.all([connect(a, "socket a"), connect(b, "socket b")])
  const ca = a.channel(topic)
  const cb = b.channel(topic)
  assert.equal((await joinOK(ca)).sub, "alice")
  assert.equal((await joinOK(cb)).sub, "bob")
  const gotB = collect(cb, "new_msg")

  // MESSAGE_LIMIT + 2 pushes: below the flood threshold (2 × the limit of
  // refusals), so the socket stays.
  const results = []
  for (let i = 1; i <= MESSAGE_LIMIT + 2; i++) {
    results.push(await outcome(ca.push("new_msg", { n: i }), `push ${i}`))
  }
  const accepted = []
  results.forEach((r, i) => {
    if (i < MESSAGE_LIMIT) {
      assert.deepEqual(r, { status: "ok", response: {} }, `push ${i + 1}: ${show(r)}`)
      accepted.push({ n: i + 1 })
    } else {
      assert.equal(r.status, "error", `push ${i + 1}: ${show(r)}`)
      assert.equal(r.response.reason, "rate limited", `push ${i + 1}: ${show(r)}`)
    }
  })

  // Every accepted broadcast reached b, none of the refused ones did.
  await flush(b)
  assert.deepEqual(gotB, accepted)
  // a was not cut off: still connected and joined, its heartbeat answered.
  assert.ok(a.isConnected(), "a was disconnected")
  assert.equal(ca.state, "joined")
  await flush(a)
})

scenario("a socket whose token expires is closed with 3000, reconnects with a fresh token and rejoins", async (h) => {
  // phoenix.js calls params() on every (re)connect (and, with a logger,
  // once more to log the URL it connected to), so params() returns the
  // current token, and a close moves to the next prefetched one (the
  // reconnect runs 10 ms after the close callbacks). The first token
  // expires in 1–2 s.
  const queue = [await token("exp", 2), await token("exp", 60), await token("exp", 60)]
  let current = queue.shift()
  const used = []
  const s = h.socket("s", URL_, {
    params: () => {
      if (used[used.length - 1] !== current) used.push(current)
      return { token: current }
    },
  })
  const closes = []
  let opens = 0
  s.onClose((ev) => {
    closes.push(ev && ev.code)
    if (queue.length > 0) current = queue.shift()
  })
  s.onOpen(() => { opens++ })
  const ch = s.channel(unique("room"))
  const joins = []
  await connect(s, "socket")
  await within(WAIT, "the first join", (resolve) => {
    ch.join().receive("ok", (resp) => { joins.push(resp); resolve() })
  })
  assert.equal(used.length, 1)
  const first = claimsOf(used[0])
  assert.deepEqual(joins, [{ sub: "exp", n: first.n }])

  // The server closes the socket at exp (<= 2 s), phoenix.js reconnects
  // with fresh params, and the channel rejoins: the server saw the new
  // token's claims.
  const untilExp = first.exp * 1000 - Date.now()
  await until(() => closes.length >= 1, "the close at exp", Math.max(untilExp, 0) + WAIT)
  assert.equal(closes[0], 3000, `close codes ${show(closes)}`)
  assert.ok(Date.now() >= first.exp * 1000, "closed before exp")
  await until(() => opens >= 2 && joins.length >= 2, "the reconnect and rejoin")
  assert.equal(used.length, 2, `tokens passed in params: ${used.length}`)
  const second = claimsOf(used[1])
  assert.ok(second.exp > first.exp, `second exp ${second.exp}, first ${first.exp}`)
  assert.notEqual(second.n, first.n)
  assert.deepEqual(joins[1], { sub: "exp", n: second.n })
  assert.deepEqual(closes, [3000], `close codes ${show(closes)}`)
  assert.equal(opens, 2)

  // The new connection works.
  assert.equal(ch.state, "joined")
  assert.deepEqual(await outcome(ch.push("new_msg", { after: "reconnect" }), "push after the reconnect"), { status: "ok", response: {} })
})

scenario("the authToken option (subprotocol) carries the token; bad or missing tokens are refused with 403", async (h) => {
  const s = h.socket("tok", URL_, { authToken: await token("subproto", 3600) })
  await connect(s, "socket with authToken")
  assert.equal((await joinOK(s.channel(unique("room")))).sub, "subproto")

  await expectRefused(h.socket("garbage", URL_, { params: { token: "garbage" }, reconnectAfterMs: () => 60000 }), "garbage token")
  await expectRefused(h.socket("none", URL_, { reconnectAfterMs: () => 60000 }), "no token")
})
