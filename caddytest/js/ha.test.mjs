// Two Caddy nodes on a three-server NATS cluster (streams of three
// replicas), driven by the stock phoenix.js client, through the SIGKILL of
// the server node A is connected to, and its restart. TestHANATS in
// ../ha_nats_test.go starts the servers and the nodes, then runs this file
// with HA_URL_A, HA_URL_B (ws://…/socket), HA_API_KEY and HA_CONTROL (a
// test server whose /kill-server-of-a kills that server and answers once
// node A is connected to another one, and whose /restart-server restarts it
// and answers once the cluster is healthy).

import { test } from "node:test"
import assert from "node:assert/strict"
import { setTimeout as sleep } from "node:timers/promises"
import { Presence } from "phoenix"
import { flush, show, Harness, connect, joinOK, until, unique, keysOf } from "./harness.mjs"

const A = process.env.HA_URL_A
const B = process.env.HA_URL_B
const API_KEY = process.env.HA_API_KEY
const CONTROL = process.env.HA_CONTROL

// RECOVERY bounds the wait for the cluster to take publishes with history
// again: a new stream leader takes up to about 10 s to be elected.
const RECOVERY = 30000

// publish posts a broadcast to a node's API and returns the status (0 when
// the request failed).
async function publish(wsURL, topic, n) {
  const u = new URL(wsURL)
  u.protocol = "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/broadcast"
  try {
    const res = await fetch(u, {
      method: "POST",
      headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ topic, event: "msg", payload: { n } }),
      signal: AbortSignal.timeout(10000),
    })
    await res.text()
    return res.status
  } catch {
    return 0
  }
}

// control calls the test's control server and returns its answer.
async function control(what) {
  const res = await fetch(`${CONTROL}/${what}`, { method: "POST", signal: AbortSignal.timeout(RECOVERY) })
  assert.equal(res.status, 200, what)
  return res.text()
}

// seqOf returns the seq of a position "<epoch>:<seq>".
const seqOf = (pos) => Number(pos.slice(pos.lastIndexOf(":") + 1))

// reader joins topic on url and records every broadcast live, in arrival
// order, with its position.
async function reader(h, name, url, topic) {
  const s = h.socket(name, url)
  await connect(s, name)
  const ch = s.channel(topic, {})
  const got = []
  ch.on("msg", (payload, ref) => got.push({ n: payload.n, pos: ref }))
  const r = await joinOK(ch)
  return { s, ch, got, start: r._position }
}

test("a NATS server dies under two nodes: broadcasts flow again, _since catches up exactly once, presence holds", { timeout: 90000 }, async () => {
  const h = new Harness()
  try {
    const feed = unique("feed"), room = unique("room")
    const ra = await reader(h, "reader@A", A, feed), rb = await reader(h, "reader@B", B, feed)

    // Presence: ana on A, ben on B; a leave of either would be a bug.
    const leaves = []
    const people = []
    for (const [name, url] of [["ana", A], ["ben", B]]) {
      const s = h.socket(name, url)
      await connect(s, name)
      const ch = s.channel(room, { name })
      const p = new Presence(ch)
      p.onLeave((key, current, left) => { if (!current) leaves.push(`${key} left ${name}'s list`) })
      await joinOK(ch)
      people.push(p)
    }
    for (const p of people) await until(() => show(keysOf(p)) === show(["ana", "ben"]), "both lists to merge")

    // Before: every broadcast reaches both nodes.
    const accepted = [] // n of each publish answered 202, in order
    let n = 0
    for (let i = 0; i < 20; i++) {
      n++
      assert.equal(await publish(n % 2 ? A : B, feed, n), 202, `publish ${n} before the kill`)
      accepted.push(n)
    }
    for (const r of [ra, rb]) await until(() => r.got.length === 20, "the first 20 messages on both nodes")
    const before = ra.got[ra.got.length - 1].pos

    const victim = await control("kill-server-of-a")
    const killed = Date.now()
    h.note(`killed ${victim}`)
    // Publish through both nodes until each has had 20 accepted after its
    // first one since the kill.
    const okAfter = { [A]: 0, [B]: 0 }
    const firstOK = {}
    let failed = 0
    while (okAfter[A] < 20 || okAfter[B] < 20) {
      assert.ok(Date.now() - killed < RECOVERY, `publishes did not recover: ${show(okAfter)}`)
      n++
      const url = n % 2 ? A : B
      const status = await publish(url, feed, n)
      if (status === 202) {
        accepted.push(n)
        okAfter[url]++
        firstOK[url] ??= Date.now() - killed
      } else {
        failed++
        await sleep(50)
      }
    }
    h.note(`first 202 after the kill: A ${firstOK[A]} ms, B ${firstOK[B]} ms; ${failed} publishes failed meanwhile`)
    console.log(`# first 202 after killing ${victim}: node A ${firstOK[A]} ms, node B ${firstOK[B]} ms; ${failed} failed meanwhile`)

    // Live delivery: never twice, in order; after recovery, everything.
    const last = accepted[accepted.length - 1]
    for (const r of [ra, rb]) {
      await until(() => r.got.length > 0 && r.got[r.got.length - 1].n === last, "the last message live on both nodes", RECOVERY)
      await flush(r.s)
      const seqs = r.got.map((m) => seqOf(m.pos))
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `live seqs out of order or twice: ${show(seqs)}`)
      const tail = r.got.slice(-20).map((m) => m.n)
      assert.deepEqual(tail, accepted.slice(-20), "the 20 messages after recovery, live")
    }

    // Catch-up from the position before the kill, on either node: every
    // accepted message once, in order; nothing that was refused.
    for (const url of [A, B]) {
      const s = h.socket(`catch-up@${url}`, url)
      await connect(s, "catch-up socket")
      const ch = s.channel(feed, { _since: before })
      const got = []
      ch.on("msg", (payload) => got.push(payload.n))
      const r = await joinOK(ch)
      assert.equal(r._recovered, true, show(r))
      const want = accepted.filter((x) => x > 20)
      await until(() => got.filter((x) => accepted.includes(x)).length >= want.length, `catch-up of ${want.length} messages (got ${got.length})`, RECOVERY)
      await flush(s)
      // A publish answered 503 may have been stored all the same (its
      // acknowledgement was lost with the server): such extras are
      // allowed, once and in order like the others.
      assert.equal(new Set(got).size, got.length, `catch-up delivered a message twice: ${show(got)}`)
      const extra = got.filter((x) => !accepted.includes(x))
      if (extra.length) console.log(`# stored although refused: ${show(extra)}`)
      assert.deepEqual(got.filter((x) => accepted.includes(x)), want, "catch-up: every accepted message once, in order")
      assert.deepEqual([...got].sort((x, y) => x - y), got, "catch-up in publish order")
    }

    // Presence held through the failover and converges with a new user.
    const cleo = h.socket("cleo", B)
    await connect(cleo, "cleo")
    await joinOK(cleo.channel(room, { name: "cleo" }))
    for (const p of people) await until(() => show(keysOf(p)) === show(["ana", "ben", "cleo"]), "cleo in both lists", RECOVERY)
    assert.deepEqual(leaves, [], "nobody left")

    // The server comes back: broadcasts keep flowing across nodes.
    await control("restart-server")
    for (let i = 0; i < 10; i++) {
      n++
      assert.equal(await publish(n % 2 ? A : B, feed, n), 202, `publish ${n} after the restart`)
      accepted.push(n)
    }
    for (const r of [ra, rb]) {
      await until(() => r.got[r.got.length - 1].n === n, "the messages after the restart on both nodes")
      assert.deepEqual(r.got.slice(-10).map((m) => m.n), accepted.slice(-10))
    }
    assert.deepEqual(leaves, [], "nobody left")
  } catch (err) {
    err.message = `${err.message}\n--- phoenix.js log ---\n${h.trace.join("\n")}`
    throw err
  } finally {
    await h.disconnectAll()
  }
})
