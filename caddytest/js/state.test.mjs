// Presence and history catch-up with the stock phoenix.js client (npm
// phoenix 1.8.16, unmodified). TestPhoenixJSState in
// ../phoenixjs_state_test.go starts Caddy with the matching config and runs
// this file with CHANNELS_URL (ws://host:port/socket) and CHANNELS_API_KEY.

import assert from "node:assert/strict"
import { Presence } from "phoenix"
import { WAIT, flush, show, scenario, within, connect, joinOK, until, unique, keysOf } from "./harness.mjs"

const URL_ = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const API_KEY = process.env.CHANNELS_API_KEY || "phoenixjs-state-key"

// publish posts one message to the HTTP publish API.
async function publish(topic, event, payload) {
  const u = new URL(URL_)
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  u.pathname = u.pathname.replace(/\/$/, "") + "/api/broadcast"
  const res = await fetch(u, {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ topic, event, payload }),
    signal: AbortSignal.timeout(WAIT),
  })
  assert.equal(res.status, 202, `publish: ${res.status} ${await res.text()}`)
}

scenario("Presence lists converge on three sockets through joins, leaves and a killed socket", async (h) => {
  const topic = unique("room")
  const names = ["ana", "ben", "cy"]
  const sockets = {}, channels = {}, presences = {}
  for (const name of names) {
    const s = h.socket(name, URL_, { reconnectAfterMs: () => 60000 })
    await connect(s, name)
    const ch = s.channel(topic, { name })
    const p = new Presence(ch)
    p.onSync(() => h.note(`[${name}] sync: ${show(keysOf(p))}`))
    sockets[name] = s; channels[name] = ch; presences[name] = p
    await joinOK(ch)
  }
  for (const name of names) {
    await until(() => show(keysOf(presences[name])) === show(names), `${name}'s list to hold everyone`)
  }
  // Each key has one meta with a phx_ref and the meta computed by the rule.
  const metas = presences.ana.list((key, { metas }) => metas)
  for (const m of metas) {
    assert.equal(m.length, 1)
    assert.match(m[0].phx_ref, /^[A-Za-z0-9_-]{16}$/)
    assert.ok(m[0].online_at, `meta ${show(m[0])} has online_at`)
  }
  // onJoin/onLeave fire for other people.
  const left = []
  presences.ana.onLeave((key) => left.push(key))

  // ben leaves the channel: the others drop him.
  await within(WAIT, "ben's leave", (resolve) => channels.ben.leave().receive("ok", resolve))
  for (const name of ["ana", "cy"]) {
    await until(() => show(keysOf(presences[name])) === show(["ana", "cy"]), `${name}'s list without ben`)
  }
  // cy's socket dies without a leave (TCP torn down): ana drops cy.
  sockets.cy.conn.terminate()
  await until(() => show(keysOf(presences.ana)) === show(["ana"]), "ana's list without cy")
  assert.deepEqual(left.sort(), ["ben", "cy"])
})

scenario("the same key from two sockets shows two metas, and one leaving keeps the other", async (h) => {
  const topic = unique("room")
  const watcher = h.socket("watcher", URL_)
  await connect(watcher, "watcher")
  const wch = watcher.channel(topic, { name: "watcher" })
  const wp = new Presence(wch)
  await joinOK(wch)
  const tabs = []
  for (const tab of ["tab1", "tab2"]) {
    const s = h.socket(tab, URL_)
    await connect(s, tab)
    const ch = s.channel(topic, { name: "dana" })
    await joinOK(ch)
    tabs.push(ch)
  }
  const danaMetas = () => (wp.list((key, p) => (key === "dana" ? p.metas.length : null)).find((n) => n !== null) || 0)
  await until(() => danaMetas() === 2, "two metas for dana")
  await within(WAIT, "tab1 leave", (resolve) => tabs[0].leave().receive("ok", resolve))
  await until(() => danaMetas() === 1, "one meta for dana after a tab leaves")
})

scenario("a client whose socket dies while broadcasts continue rejoins with _since and gets every message once, in order", async (h) => {
  const topic = unique("feed")
  const s = h.socket("reader", URL_, { reconnectAfterMs: () => 20 })
  await connect(s, "reader")
  let last = null
  const got = []
  const responses = []
  const ch = s.channel(topic, () => (last ? { _since: last } : {}))
  ch.on("msg", (payload, ref) => { got.push(payload.n); last = ref })
  ch.join().receive("ok", (resp) => {
    responses.push(resp)
    if (!last) last = resp._position // a fresh join starts at the stream's position
  })
  await until(() => responses.length === 1, "the first join")
  assert.equal(responses[0]._recovered, undefined, "a join without _since has no _recovered")
  assert.match(responses[0]._position, /^[A-Za-z0-9_-]+:0$/)

  const N = 300
  let killed = false
  const publisher = (async () => {
    for (let n = 1; n <= N; n++) {
      await publish(topic, "msg", { n })
      if (n === 60) {
        killed = true
        s.conn.terminate() // the reader's connection dies; phoenix.js reconnects and rejoins
      }
    }
  })()
  await publisher
  assert.ok(killed)
  await until(() => got.length >= N, `all ${N} messages (got ${got.length})`)
  await flush(s) // a duplicate queued after the last message would have arrived by now
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1), "every message exactly once, in order")
  assert.ok(responses.length >= 2, `rejoined (join replies: ${show(responses)})`)
  for (const r of responses.slice(1)) assert.equal(r._recovered, true, `rejoin recovered: ${show(r)}`)
})

scenario("a stale epoch gets _recovered: false so the app can refetch", async (h) => {
  const topic = unique("feed")
  await publish(topic, "msg", { n: 1 })
  const s = h.socket("stale", URL_)
  await connect(s, "stale")
  const ch = s.channel(topic, { _since: "oldepoch:1" })
  const resp = await joinOK(ch)
  assert.equal(resp._recovered, false, show(resp))
  assert.match(resp._position, /:1$/)
})
