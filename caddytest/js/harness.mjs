// Shared helpers of the phoenix.js tests (phoenix.test.mjs,
// webhooks.test.mjs): a harness that owns a test's sockets and their
// phoenix.js log, bounded waits, and small assertions on channels.

import { test } from "node:test"
import assert from "node:assert/strict"
import { Socket } from "phoenix"
import WebSocket from "ws"

// WAIT bounds every wait for something that should happen.
export const WAIT = 3000
// TEST_TIMEOUT bounds a whole test.
export const TEST_TIMEOUT = 10000

// show renders log data for the trace; ArrayBuffers as their bytes.
export function show(data) {
  if (data === undefined) return ""
  try {
    return JSON.stringify(data, (_k, v) => {
      if (v instanceof ArrayBuffer) return `<binary ${Array.from(new Uint8Array(v)).join(",")}>`
      return v
    })
  } catch {
    return String(data)
  }
}

// Harness owns the sockets of one test and their combined phoenix.js log.
export class Harness {
  constructor() {
    this.t0 = Date.now()
    this.trace = []
    this.sockets = []
  }

  note(line) {
    this.trace.push(`${String(Date.now() - this.t0).padStart(5)} ms ${line}`)
  }

  // socket creates (but does not connect) a phoenix.js Socket using ws.
  socket(name, url, opts = {}) {
    const s = new Socket(url, {
      transport: WebSocket,
      timeout: WAIT,
      logger: (kind, msg, data) => this.note(`[${name}] ${kind}: ${msg} ${show(data)}`),
      ...opts,
    })
    s.onClose((ev) => this.note(`[${name}] close event: code ${ev && ev.code} reason ${show(ev && ev.reason)}`))
    s.onError((err) => this.note(`[${name}] error event: ${err && err.message}`))
    this.sockets.push(s)
    return s
  }

  // disconnectAll disconnects every socket, each bounded by WAIT.
  async disconnectAll() {
    await Promise.all(this.sockets.map((s) => within(WAIT, "disconnect", (resolve) => s.disconnect(resolve)).catch(() => {})))
  }
}

// scenario runs body with a fresh Harness (from newHarness), always disconnects its sockets,
// and adds the socket log to any failure.
export function scenario(name, body, newHarness = () => new Harness()) {
  test(name, { timeout: TEST_TIMEOUT }, async () => {
    const h = newHarness()
    try {
      await body(h)
    } catch (err) {
      if (err && typeof err === "object") {
        err.message = `${err.message}\n--- phoenix.js log ---\n${h.trace.join("\n")}`
      }
      throw err
    } finally {
      await h.disconnectAll()
    }
  })
}

// within runs executor like a Promise's and rejects after ms. The promise
// counts as handled from the start: tests create some before awaiting
// something else, and an earlier failure must not turn them into unhandled
// rejections after the test ended. Awaiting it still throws.
export function within(ms, what, executor) {
  const p = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    executor(
      (v) => { clearTimeout(timer); resolve(v) },
      (e) => { clearTimeout(timer); reject(e) },
    )
  })
  p.catch(() => {})
  return p
}

// connect connects s and resolves on its first open; an error first rejects.
export function connect(s, what) {
  return within(WAIT, `${what} to open`, (resolve, reject) => {
    const refs = []
    refs.push(s.onOpen(() => { s.off(refs); resolve() }))
    refs.push(s.onError((e) => { s.off(refs); reject(new Error(`${what}: socket error before open: ${e && e.message}`)) }))
    s.connect()
  })
}

// outcome resolves with the first status a push receives.
export function outcome(push, what) {
  return within(WAIT + 1000, what, (resolve) => {
    push
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout" }))
  })
}

// joinOK joins ch and returns the response of its ok reply.
export async function joinOK(ch) {
  const r = await outcome(ch.join(), `join ${ch.topic}`)
  assert.equal(r.status, "ok", `join ${ch.topic}: got ${show(r)}`)
  return r.response
}

// nextEvent resolves with the payload of the next event on ch.
export function nextEvent(ch, event, what) {
  return within(WAIT, what || `${event} on ${ch.topic}`, (resolve) => {
    const ref = ch.on(event, (payload) => { ch.off(event, ref); resolve(payload) })
  })
}

// until polls cond every 10 ms until it holds, bounded by ms.
export function until(cond, what, ms = WAIT) {
  return within(ms, what, (resolve) => {
    const tick = () => (cond() ? resolve() : setTimeout(tick, 10))
    tick()
  })
}

// unique returns a topic no earlier run used (history outlives reloads).
export function unique(prefix) {
  return `${prefix}:${Date.now()}-${Math.floor(Math.random() * 1e9)}`
}

// keysOf lists a phoenix.js Presence's keys, sorted.
export function keysOf(presence) {
  return presence.list((key) => key).sort()
}

// collect records every payload of event on ch.
export function collect(ch, event) {
  const got = []
  ch.on(event, (payload) => got.push(payload))
  return got
}

// expectRefused connects s and asserts that it never opens: the upgrade is
// refused (an error event, with the 403 when the runtime reports it).
export async function expectRefused(s, name) {
  let opened = false
  s.onOpen(() => { opened = true })
  const err = await within(WAIT, `an error on the ${name} socket`, (resolve) => {
    s.onError(resolve)
    s.connect()
  })
  s.disconnect()
  assert.equal(opened, false, `${name} socket opened`)
  if (err && err.message) assert.match(err.message, /403/, `${name} socket`)
}

// flush sends a heartbeat on socket and resolves once its reply arrives.
// The server answers a socket's frames in order and queues every frame
// for it in order, so whatever was queued for the socket before the
// heartbeat was read (a broadcast that must not arrive, say) has arrived
// by then: asserting that nothing came needs no quiet period.
export function flush(socket, what = "the heartbeat reply (flush)") {
  const ref = socket.makeRef()
  return within(WAIT, what, (resolve) => {
    const id = socket.onMessage((m) => {
      if (m.topic === "phoenix" && m.ref === ref) {
        socket.off([id])
        resolve()
      }
    })
    socket.push({ topic: "phoenix", event: "heartbeat", payload: {}, ref })
  })
}
