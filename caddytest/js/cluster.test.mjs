// Two Caddy nodes sharing one broker (Redis or NATS), driven by the stock
// phoenix.js client. TestClusterRedis and TestClusterNATS in
// ../cluster_test.go start a private broker server and both nodes, then run
// this file with CLUSTER_URL_A, CLUSTER_URL_B (ws://…/socket),
// CLUSTER_API_KEY, and CLUSTER_CONTROL (a test server whose
// /restart-broker restarts the broker).

import { test } from "node:test"
import assert from "node:assert/strict"
import { setTimeout as sleep } from "node:timers/promises"
import { Presence } from "phoenix"
import { WAIT, flush, show, Harness, scenario, within, connect, joinOK, nextEvent, until, unique, keysOf } from "./harness.mjs"

const A = process.env.CLUSTER_URL_A
const B = process.env.CLUSTER_URL_B
const API_KEY = process.env.CLUSTER_API_KEY
const CONTROL = process.env.CLUSTER_CONTROL

// api posts to a node's HTTP API and returns the status.
async function api(wsURL, what, body) {
  const u = new URL(wsURL)
  u.protocol = "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/" + what
  const res = await fetch(u, {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT),
  })
  await res.text()
  return res.status
}

async function publish(wsURL, topic, event, payload) {
  const status = await api(wsURL, "broadcast", { topic, event, payload })
  assert.equal(status, 202, `publish on ${wsURL}`)
}

scenario("a broadcast on one node reaches subscribers on both", async (h) => {
  const topic = unique("room")
  const sa = h.socket("a", A), sb = h.socket("b", B)
  await connect(sa, "socket on A"); await connect(sb, "socket on B")
  const ca = sa.channel(topic, { name: "a" }), cb = sb.channel(topic, { name: "b" })
  await joinOK(ca); await joinOK(cb)
  const both = [nextEvent(ca, "news", "news on A"), nextEvent(cb, "news", "news on B")]
  await publish(A, topic, "news", { from: "api-on-A" })
  for (const p of await Promise.all(both)) assert.deepEqual(p, { from: "api-on-A" })
  // A client push on B reaches A.
  const onA = nextEvent(ca, "msg", "B's push on A")
  cb.push("msg", { body: "hi from B" })
  assert.deepEqual(await onA, { body: "hi from B" })
})

scenario("presence lists merge across nodes, and a socket killed on one node leaves on the other", async (h) => {
  const topic = unique("room")
  const sa = h.socket("ana", A), sb = h.socket("ben", B, { reconnectAfterMs: () => 60000 })
  await connect(sa, "ana on A"); await connect(sb, "ben on B")
  const ca = sa.channel(topic, { name: "ana" }), cb = sb.channel(topic, { name: "ben" })
  const pa = new Presence(ca), pb = new Presence(cb)
  await joinOK(ca); await joinOK(cb)
  await until(() => show(keysOf(pa)) === show(["ana", "ben"]), "A's list to merge")
  await until(() => show(keysOf(pb)) === show(["ana", "ben"]), "B's list to merge")
  sb.conn.terminate()
  await until(() => show(keysOf(pa)) === show(["ana"]), "ben to leave A's list")
})

scenario("a client that moves to the other node catches up with _since: every message once, in order", async (h) => {
  const topic = unique("feed")
  let last = null
  const got = []
  const onMsg = (payload, ref) => { got.push(payload.n); last = ref }
  const s1 = h.socket("reader@A", A)
  await connect(s1, "reader on A")
  const c1 = s1.channel(topic, () => (last ? { _since: last } : {}))
  c1.on("msg", onMsg)
  const r1 = await joinOK(c1)
  last = r1._position
  const N = 120
  for (let n = 1; n <= N; n++) {
    await publish(n % 2 ? A : B, topic, "msg", { n })
    if (n === 40) {
      await until(() => got.length >= 30, "some messages on A")
      s1.disconnect() // the load balancer moves the client
    }
  }
  const s2 = h.socket("reader@B", B)
  await connect(s2, "reader on B")
  const c2 = s2.channel(topic, () => (last ? { _since: last } : {}))
  c2.on("msg", onMsg)
  const r2 = await joinOK(c2)
  assert.equal(r2._recovered, true, show(r2))
  await until(() => got.length >= N, `all ${N} messages (got ${got.length})`)
  await flush(s2) // a duplicate queued after the last message would have arrived by now
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1))
})

scenario("a disconnect API call on node A closes the socket on node B", async (h) => {
  const sb = h.socket("zed@B", B, { params: { user: "zed" }, reconnectAfterMs: () => 60000 })
  await connect(sb, "zed on B")
  const closed = within(WAIT, "zed's socket to close", (resolve) => sb.onClose((ev) => resolve(ev.code)))
  assert.equal(await api(A, "disconnect", { id: "user_socket:zed" }), 202)
  assert.equal(await closed, 1001)
})

test("after a broker restart, subscriptions are restored and nothing is delivered twice", { timeout: 40000 }, async () => {
  const h = new Harness()
  try {
    const topic = unique("room")
    const sa = h.socket("a", A), sb = h.socket("b", B)
    await connect(sa, "socket on A"); await connect(sb, "socket on B")
    const ca = sa.channel(topic, { name: "a" }), cb = sb.channel(topic, { name: "b" })
    await joinOK(ca); await joinOK(cb)
    const seen = []
    cb.on("tick", (p) => seen.push(p.n))
    const res = await fetch(`${CONTROL}/restart-broker`, { method: "POST", signal: AbortSignal.timeout(15000) })
    assert.equal(res.status, 200)
    // Publish on A until B gets one: the nodes reconnect with backoff.
    let n = 0
    await within(15000, "a broadcast from A to reach B after the restart", async (resolve) => {
      while (seen.length === 0) {
        n++
        await api(A, "broadcast", { topic, event: "tick", payload: { n } }).catch(() => 0)
        await sleep(100)
      }
      resolve()
    })
    // From now on every broadcast arrives exactly once.
    const first = n + 1
    for (let k = first; k < first + 20; k++) await publish(A, topic, "tick", { n: k })
    await until(() => seen.filter((x) => x >= first).length >= 20, "20 ticks after recovery")
    await flush(sb) // a duplicate queued after the last tick would have arrived by now
    const after = seen.filter((x) => x >= first)
    assert.deepEqual(after, Array.from({ length: 20 }, (_, i) => first + i), "no duplicate, no loss after recovery")
    assert.equal(new Set(seen).size, seen.length, `no duplicate at all: ${show(seen)}`)
  } catch (err) {
    err.message = `${err.message}\n--- phoenix.js log ---\n${h.trace.join("\n")}`
    throw err
  } finally {
    await h.disconnectAll()
  }
})

test("a killed node's presences leave the other node's lists within presence_ttl", { timeout: 20000 }, async () => {
  const h = new Harness()
  try {
    const topic = unique("room")
    const sa = h.socket("ana", A), sb = h.socket("ben", B, { reconnectAfterMs: () => 60000 })
    await connect(sa, "ana on A"); await connect(sb, "ben on B")
    const ca = sa.channel(topic, { name: "ana" }), cb = sb.channel(topic, { name: "ben" })
    const pa = new Presence(ca)
    await joinOK(ca); await joinOK(cb)
    await until(() => show(keysOf(pa)) === show(["ana", "ben"]), "A's list to hold ben")
    const res = await fetch(`${CONTROL}/kill-node-b`, { method: "POST", signal: AbortSignal.timeout(WAIT) })
    assert.equal(res.status, 200)
    const t0 = Date.now()
    await until(() => show(keysOf(pa)) === show(["ana"]), "ben to leave after node B died", 10000)
    h.note(`ben left ${Date.now() - t0} ms after node B was killed (presence_ttl 2s)`)
  } catch (err) {
    err.message = `${err.message}\n--- phoenix.js log ---\n${h.trace.join("\n")}`
    throw err
  } finally {
    await h.disconnectAll()
  }
})
