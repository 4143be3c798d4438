// permessage-deflate with the stock phoenix.js client (npm phoenix 1.8.16)
// over ws, which offers the extension by default. TestCompressionPhoenixJS
// in ../compression_test.go starts Caddy with `compression` on /socket and
// without it on /plain, and runs this file with CHANNELS_URL,
// CHANNELS_PLAIN_URL and CHANNELS_API_KEY.

import assert from "node:assert/strict"
import WebSocket from "ws"
import { WAIT, scenario, within, connect, joinOK, nextEvent, outcome, unique } from "./harness.mjs"

const URL_ = process.env.CHANNELS_URL || "ws://localhost:9080/socket"
const PLAIN_URL = process.env.CHANNELS_PLAIN_URL || "ws://localhost:9080/plain"
const API_KEY = process.env.CHANNELS_API_KEY || "compression-key"

// publish posts one message to the HTTP publish API of the /socket mount.
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

// chat is a list of n chat messages: realistic, compressible JSON.
function chat(n) {
  const words = ["deploy", "finished", "please", "review", "the", "branch", "release", "notes", "looks", "good"]
  const messages = []
  for (let i = 0; i < n; i++) {
    const text = Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(" ")
    messages.push({ id: `msg_${i}`, user: { id: i % 9, name: `user${i % 9}` }, text, sent_at: new Date(1e12 + i * 1000).toISOString() })
  }
  return { messages }
}

// bytesRead is what the socket's TCP connection has received so far.
const bytesRead = (s) => s.conn._socket.bytesRead

// PlainWebSocket is ws without permessage-deflate.
class PlainWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { perMessageDeflate: false })
  }
}

scenario("phoenix.js over ws negotiates permessage-deflate and reads compressed broadcasts", async (h) => {
  const s = h.socket("deflate", URL_)
  await connect(s, "deflate socket")
  assert.equal(s.conn.extensions, "permessage-deflate", "negotiated extension")
  const topic = unique("room")
  const ch = s.channel(topic)
  await joinOK(ch)

  // A 20 KB broadcast arrives whole, in far fewer bytes.
  const big = chat(150)
  const before = bytesRead(s)
  const got = nextEvent(ch, "news")
  await publish(topic, "news", big)
  assert.deepEqual(await got, big)
  const wire = bytesRead(s) - before
  const plain = JSON.stringify(big).length
  assert.ok(wire < plain / 3, `${wire} bytes on the wire for ${plain} bytes of JSON`)

  // A small one too (below the threshold: sent plain).
  const small = { text: "hi" }
  const got2 = nextEvent(ch, "news")
  await publish(topic, "news", small)
  assert.deepEqual(await got2, small)

  // A push over ws's threshold (1 KB) is sent compressed; the server
  // inflates it, broadcasts it and replies.
  const pushed = chat(40)
  const echoed = nextEvent(ch, "new_msg")
  const r = await outcome(ch.push("new_msg", pushed), "push reply")
  assert.equal(r.status, "ok")
  assert.deepEqual(await echoed, pushed)
})

scenario("without the directive, or without the client's offer, nothing is compressed", async (h) => {
  const plainServer = h.socket("plain-server", PLAIN_URL)
  await connect(plainServer, "plain server socket")
  assert.equal(plainServer.conn.extensions, "", "the /plain mount answered the offer")

  const plainClient = h.socket("plain-client", URL_, { transport: PlainWebSocket })
  await connect(plainClient, "plain client socket")
  assert.equal(plainClient.conn.extensions, "")
  const topic = unique("room")
  const ch = plainClient.channel(topic)
  await joinOK(ch)
  const big = chat(150)
  const before = bytesRead(plainClient)
  const got = nextEvent(ch, "news")
  await publish(topic, "news", big)
  assert.deepEqual(await got, big)
  assert.ok(bytesRead(plainClient) - before >= JSON.stringify(big).length, "plain socket got fewer bytes than the JSON")
})

// A zip bomb from a raw ws client (100 MiB of zeros compressed) is closed
// with 1009; ws itself sends it, compressing as it streams.
scenario("a compressed message that inflates past max_frame_size is closed with 1009", async () => {
  const ws = new WebSocket(`${URL_}/websocket?vsn=2.0.0`)
  await within(WAIT, "raw socket to open", (resolve, reject) => { ws.on("open", resolve); ws.on("error", reject) })
  assert.equal(ws.extensions, "permessage-deflate")
  const closed = within(WAIT * 3, "close 1009", (resolve) => ws.on("close", (code) => resolve(code)))
  ws.on("error", () => {}) // the server may close while ws still writes
  ws.send(Buffer.alloc(100 << 20, 0x20), { binary: false, compress: true })
  assert.equal(await closed, 1009)
})
