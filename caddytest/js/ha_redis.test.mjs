// Two Caddy nodes on a highly available Redis (Sentinel or Cluster) through
// a failover, driven by the stock phoenix.js client. TestHARedisSentinel and
// TestHARedisCluster in ../ha_redis_test.go start the servers and both
// nodes, then run this file with CLUSTER_URL_A, CLUSTER_URL_B, CLUSTER_API_KEY
// and CLUSTER_CONTROL (a test server whose /failover?topic=T kills the
// master serving T and answers once its replica is promoted).

import { test } from "node:test"
import assert from "node:assert/strict"
import { setTimeout as sleep } from "node:timers/promises"
import { Presence } from "phoenix"
import { show, Harness, within, connect, joinOK, until, unique, keysOf, flush } from "./harness.mjs"

const A = process.env.CLUSTER_URL_A
const B = process.env.CLUSTER_URL_B
const API_KEY = process.env.CLUSTER_API_KEY
const CONTROL = process.env.CLUSTER_CONTROL

// broadcast posts to a node's broadcast API and returns the status (0 on a
// network error).
async function broadcast(wsURL, topic, event, payload) {
  const u = new URL(wsURL)
  u.protocol = "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/broadcast"
  try {
    const res = await fetch(u, {
      method: "POST",
      headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ topic, event, payload }),
      signal: AbortSignal.timeout(5000),
    })
    await res.text()
    return res.status
  } catch {
    return 0
  }
}

// report notes msg in the trace and prints it (the Go test logs it).
function report(h, msg) {
  h.note(msg)
  console.log(msg)
}

// parse splits an "<epoch>:<seq>" position.
function parse(pos) {
  const i = String(pos).lastIndexOf(":")
  return { epoch: String(pos).slice(0, i), seq: Number(String(pos).slice(i + 1)) }
}

// reader joins topic on url with _since its last position and records n.
// Like a careful app it accepts broadcasts in position order only: one
// after a gap or of another epoch is not taken, and the next join's _since
// (the last position taken) fetches what was missed.
async function reader(h, name, url, state) {
  const s = h.socket(name, url)
  await connect(s, name)
  const ch = s.channel(state.topic, () => (state.last ? { _since: state.last } : {}))
  ch.on("msg", (p, ref) => {
    const at = parse(ref), last = parse(state.last)
    if (at.epoch === last.epoch && at.seq === last.seq + 1) {
      state.got.push(p.n)
      state.last = ref
    } else {
      state.skipped++
    }
  })
  const reply = await joinOK(ch)
  if (!state.last) state.last = reply._position
  return { s, ch, reply }
}

test("through a failover: broadcasts across nodes, _since catch-up exactly once, presence converges", { timeout: 80000 }, async () => {
  const h = new Harness()
  try {
    const feed = { topic: unique("feed"), got: [], last: null, skipped: 0 }
    const room = unique("room")
    // Presence: ana on A, ben on B.
    const sa = h.socket("ana", A), sb = h.socket("ben", B)
    await connect(sa, "ana on A"); await connect(sb, "ben on B")
    const ca = sa.channel(room, { name: "ana" }), cb = sb.channel(room, { name: "ben" })
    const pa = new Presence(ca), pb = new Presence(cb)
    await joinOK(ca); await joinOK(cb)
    const both = show(["ana", "ben"])
    await until(() => show(keysOf(pa)) === both && show(keysOf(pb)) === both, "merged presence lists before")

    // A history reader on B; publishes alternate between the nodes.
    let r = await reader(h, "reader@B", B, feed)
    for (let n = 1; n <= 20; n++) assert.equal(await broadcast(n % 2 ? A : B, feed.topic, "msg", { n }), 202)
    await until(() => feed.got.length >= 20, "20 messages before the failover")
    const before = feed.last

    const res = await fetch(`${CONTROL}/failover?topic=${encodeURIComponent(feed.topic)}`, { method: "POST", signal: AbortSignal.timeout(40000) })
    assert.equal(res.status, 200, await res.clone().text())
    report(h, `failover: ${show(await res.json())}`)

    // Publish until 20 broadcasts were accepted after the failover; the
    // rejected ones (503 while no master serves the topic) are not stored.
    const acked = []
    const t0 = Date.now()
    let n = 21, rejected = 0
    while (acked.length < 20) {
      if (Date.now() - t0 > 30000) throw new Error(`only ${acked.length} broadcasts accepted 30 s after the failover`)
      const st = await broadcast(n % 2 ? A : B, feed.topic, "msg", { n })
      if (st === 202) acked.push(n); else { rejected++; await sleep(50) }
      n++
    }
    report(h, `first accepted broadcast ${Date.now() - t0} ms after the promotion; ${rejected} rejected`)
    await flush(r.s)
    assert.equal(new Set(feed.got).size, feed.got.length, `nothing delivered twice: ${show(feed.got)}`)

    // The reader moves to A and catches up from its last position.
    r.s.disconnect()
    const moved = await reader(h, "reader@A", A, feed)
    if (moved.reply._recovered) {
      await until(() => acked.every((k) => feed.got.includes(k)), `every accepted message (got ${show(feed.got)})`)
    } else {
      // The failover may have lost acknowledged writes: a new epoch says
      // so instead of a silent gap.
      assert.notEqual(parse(moved.reply._position).epoch, parse(feed.last).epoch, show(moved.reply))
      feed.last = moved.reply._position
    }
    report(h, `catch-up after the failover: _recovered ${moved.reply._recovered}, position ${before} -> ${moved.reply._position}, ${feed.skipped} broadcasts out of order skipped`)
    // From the new position on, a move between nodes is exactly-once again.
    const mark = feed.got.length
    moved.s.disconnect()
    for (let k = 1000; k < 1020; k++) assert.equal(await broadcast(k % 2 ? A : B, feed.topic, "msg", { n: k }), 202)
    const again = await reader(h, "reader@B2", B, feed)
    assert.equal(again.reply._recovered, true, show(again.reply))
    await until(() => feed.got.filter((k) => k >= 1000).length >= 20, "the 20 messages published while moving")
    await flush(again.s)
    assert.deepEqual(feed.got.slice(mark).filter((k) => k >= 1000), Array.from({ length: 20 }, (_, i) => 1000 + i))
    assert.equal(new Set(feed.got).size, feed.got.length, `nothing delivered twice: ${show(feed.got)}`)

    // Presence converges: both lists still hold both, and ben's leave on B
    // reaches A.
    await until(() => show(keysOf(pa)) === both && show(keysOf(pb)) === both, "merged presence lists after", 10000)
    // Presence diffs are transient broadcasts: one published while node A's
    // subscription to the room is still moving to the new master (each
    // node refreshes its own view of the cluster) is lost for A's clients
    // (README, per-fault table). Wait until a broadcast from B reaches A on
    // the room before ben leaves, then the leave must arrive.
    let marks = 0
    ca.on("mark", () => { marks++ })
    const tm = Date.now()
    for (let k = 0; marks === 0; k++) {
      if (Date.now() - tm > 30000) throw new Error("no broadcast from B reached A on the room 30 s after the failover")
      await broadcast(B, room, "mark", { k })
      await sleep(100)
    }
    report(h, `room subscription on A carries B's broadcasts ${Date.now() - tm} ms after the catch-up`)
    sb.disconnect()
    await until(() => show(keysOf(pa)) === show(["ana"]), "ben's leave on A", 10000)
  } catch (err) {
    err.message = `${err.message}\n--- phoenix.js log ---\n${h.trace.join("\n")}`
    throw err
  } finally {
    await h.disconnectAll()
  }
})
