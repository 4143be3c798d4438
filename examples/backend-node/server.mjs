#!/usr/bin/env node
// The example chat app of examples/backend (Go) in Node.js 20, standard
// library only (node:http, node:crypto): the same login endpoint and the
// same four webhooks of docs/webhooks.md, with the same answers, byte for
// byte, for every request the channels handler sends.
//
//   CHANNELS_WEBHOOK_SECRET=… node examples/backend-node/server.mjs --listen 127.0.0.1:3000
//
//   POST /login           {"name":"alice"} or name=alice → {"token":"…"}
//   POST /socket/connect  verifies params.token → socket id and assigns
//   POST /channels/join   room:* for everyone, room:private-* for members
//   POST /channels/event  new_msg, shout, whoami, rename, bye, ping_me, echo
//   POST /channels/leave  logs the notification, answers 204
//
// The address comes from --listen (or -listen, as in Go), else the LISTEN
// environment variable, else 127.0.0.1:3000; port 0 picks a free port. The
// app prints "listening on http://<host>:<port>" (the bound port) on stderr
// once it accepts connections. It refuses to start without
// CHANNELS_WEBHOOK_SECRET unless --insecure is given, in which case webhook
// signatures are not checked.

import http from "node:http"
import crypto from "node:crypto"

// MAX_BODY is the largest request body the app reads.
const MAX_BODY = 1 << 20
// SIGNATURE_TOLERANCE is how far (seconds) a signature's timestamp may be
// from the local clock, in either direction.
const SIGNATURE_TOLERANCE = 300
// TOKEN_TTL is how long (seconds) a login token stays valid.
const TOKEN_TTL = 24 * 60 * 60
const MAX_NAME_LEN = 32
const MAX_MESSAGE_LEN = 4000
const EVENT_HEADER = "x-channels-event"
const SIGNATURE_HEADER = "x-channels-signature"
// MEMBERS lists who may join room:<subtopic> for private subtopics.
const MEMBERS = { "private-staff": ["alice", "bob"] }

// ---- logging, as Go's log.New(os.Stderr, "chat: ", log.LstdFlags) ----

function logf(msg) {
  const d = new Date()
  const p = (n) => String(n).padStart(2, "0")
  const ts = `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  process.stderr.write(`chat: ${ts} ${msg}\n`)
}

// ---- JSON, encoded as Go's encoding/json does ----
// Answers must be byte-identical to the Go app's: map keys sorted by their
// UTF-8 bytes, struct fields in declaration order (objects built with
// struct()), HTML characters and U+2028/U+2029 escaped, a trailing newline.

const STRUCT = Symbol("struct")

// struct marks obj as a Go struct: its keys keep their order.
function struct(obj) {
  Object.defineProperty(obj, STRUCT, { value: true })
  return obj
}

function utf8Compare(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))
}

function goString(s) {
  s = s.toWellFormed() // Go decodes lone surrogates to U+FFFD
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)
    if (ch === '"') out += '\\"'
    else if (ch === "\\") out += "\\\\"
    else if (ch === "\n") out += "\\n"
    else if (ch === "\r") out += "\\r"
    else if (ch === "\t") out += "\\t"
    else if (ch === "\b") out += "\\b"
    else if (ch === "\f") out += "\\f"
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) {
      out += "\\u" + c.toString(16).padStart(4, "0")
    } else out += ch
  }
  return out + '"'
}

function goJSON(v) {
  if (v === null || v === undefined) return "null"
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v)
  if (typeof v === "string") return goString(v)
  if (Array.isArray(v)) return "[" + v.map(goJSON).join(",") + "]"
  const keys = Object.keys(v).filter((k) => v[k] !== undefined)
  if (!v[STRUCT]) keys.sort(utf8Compare)
  return "{" + keys.map((k) => goString(k) + ":" + goJSON(v[k])).join(",") + "}"
}

// ---- decoding request bodies with Go's type checks ----

class DecodeError extends Error {}

function jsonKind(v) {
  if (typeof v === "string") return "string"
  if (typeof v === "number") return "number"
  if (typeof v === "boolean") return "bool"
  if (Array.isArray(v)) return "array"
  return "object"
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v)
}

const SOCKET_FIELDS = { id: "string", transport: "string", vsn: "string", remote_ip: "string", assigns: "map" }
const GO_TYPES = { string: "string", map: "map[string]interface {}", bytes: "[]uint8", socket: "chat.socketInfo" }

// checkFields reports the first value (in document order) whose JSON type
// does not fit its Go field, with Go's UnmarshalTypeError message. null
// fits everything; fields of type "raw" take any value.
function checkFields(obj, fields, structName, prefix) {
  for (const [key, value] of Object.entries(obj)) {
    const want = fields[key]
    if (!want || want === "raw" || value === null) continue
    const kind = jsonKind(value)
    const fits = { string: kind === "string", bytes: kind === "string", map: kind === "object", socket: kind === "object" }[want]
    if (!fits) {
      throw new DecodeError(`json: cannot unmarshal ${kind} into Go struct field ${structName}.${prefix}${key} of type ${GO_TYPES[want]}`)
    }
    if (want === "socket") checkFields(value, SOCKET_FIELDS, "socketInfo", prefix + key + ".")
  }
}

const B64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

// decodeStd decodes standard base64 with padding, as Go's
// base64.StdEncoding (which skips \r and \n).
function decodeStd(s) {
  const clean = s.replace(/[\r\n]/g, "")
  if (!B64_STD.test(clean)) {
    let i = clean.search(/[^A-Za-z0-9+/=]/)
    if (i < 0) i = Math.max(0, clean.length - (clean.length % 4 || 4))
    throw new DecodeError(`illegal base64 data at input byte ${i}`)
  }
  return Buffer.from(clean, "base64")
}

// decode parses a webhook body into a plain object (null is {}), checking
// the fields that Go decodes into typed struct fields.
function decode(body, structName, fields) {
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(body)
  let v
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new DecodeError(text.trim() === "" ? "unexpected end of JSON input" : err.message)
  }
  if (v === null) return {}
  if (!isObject(v)) throw new DecodeError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type chat.${structName}`)
  checkFields(v, fields, structName, "")
  return v
}

function str(v) {
  return typeof v === "string" ? v : ""
}

function assignsOf(req) {
  const a = isObject(req.socket) ? req.socket.assigns : null
  return isObject(a) ? a : {}
}

// Go's unicode.IsSpace, for strings.TrimSpace.
const SPACE = "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

function trimSpace(s) {
  let i = 0
  let j = s.length
  while (i < j && SPACE.includes(s[i])) i++
  while (j > i && SPACE.includes(s[j - 1])) j--
  return s.slice(i, j)
}

function hasNonFinite(v) {
  if (typeof v === "number") return !Number.isFinite(v)
  if (v !== null && typeof v === "object") return Object.values(v).some(hasNonFinite)
  return false
}

// ---- signatures ----

const INT64 = /^[+-]?[0-9]+$/

// verifySignature returns null if header signs body with secret within the
// window, else the reason, like chat.VerifySignature.
function verifySignature(secret, header, body, nowSec) {
  if (!header) return "missing signature header"
  let ts = ""
  const sigs = []
  for (const part of header.split(",")) {
    const p = trimSpace(part)
    const eq = p.indexOf("=")
    if (eq < 0) continue
    const key = p.slice(0, eq)
    const value = p.slice(eq + 1)
    if (key === "t") {
      if (ts !== "") return "signature header has more than one timestamp"
      ts = value
    } else if (key === "v1") {
      if (value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) return "decoding v1 signature: invalid hex"
      sigs.push(Buffer.from(value, "hex"))
    }
  }
  if (ts === "" || sigs.length === 0) return "signature header needs t= and v1="
  if (!INT64.test(ts)) return "parsing signature timestamp: invalid syntax"
  const unix = BigInt(ts)
  if (unix > 0x7fffffffffffffffn || unix < -0x8000000000000000n) return "parsing signature timestamp: value out of range"
  const want = crypto.createHmac("sha256", secret).update(ts).update(".").update(body).digest()
  let matched = false
  for (const sig of sigs) {
    if (sig.length === want.length && crypto.timingSafeEqual(sig, want)) matched = true
  }
  if (!matched) return "signature does not match"
  const now = BigInt(nowSec)
  const tol = BigInt(SIGNATURE_TOLERANCE)
  if (unix < now - tol || unix > now + tol) {
    return `signature timestamp ${unix} is more than 5m0s away from the local clock`
  }
  return null
}

// ---- tokens ----

function validName(name) {
  if (name === "" || Buffer.byteLength(name, "utf8") > MAX_NAME_LEN) {
    return `name must have 1 to ${MAX_NAME_LEN} characters`
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    return `name may only contain letters, digits, '_', '-' and '.', got ${goQuote(name)}`
  }
  return null
}

// goQuote is Go's %q (strconv.Quote) of a string.
function goQuote(s) {
  let out = '"'
  for (const ch of s.toWellFormed()) {
    const c = ch.codePointAt(0)
    const esc = { "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\" }[ch]
    if (esc) out += esc
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0")
    else if (ch === " " || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch
    else if (c < 0x10000) out += "\\u" + c.toString(16).padStart(4, "0")
    else out += "\\U" + c.toString(16).padStart(8, "0")
  }
  return out + '"'
}

class App {
  constructor(secret) {
    this.secret = Buffer.from(secret, "utf8")
    if (secret !== "") {
      // A key of its own for login tokens, derived from the secret, so a
      // token can never pass for a webhook signature or the reverse.
      this.tokenKey = crypto.createHmac("sha256", this.secret).update("chat login tokens v1").digest()
    } else {
      this.tokenKey = crypto.randomBytes(32)
    }
  }

  now() {
    return Math.floor(Date.now() / 1000)
  }

  tokenMAC(claims) {
    return crypto.createHmac("sha256", this.tokenKey).update(claims).digest()
  }

  issueToken(name) {
    const err = validName(name)
    if (err) return { err: "issuing token: " + err }
    const claims = Buffer.from(name, "utf8").toString("base64url") + "." + (this.now() + TOKEN_TTL)
    return { token: claims + "." + this.tokenMAC(claims).toString("base64url") }
  }

  // verifyToken returns {name} or {err}.
  verifyToken(token) {
    if (token === "") return { err: "no token" }
    const i = token.lastIndexOf(".")
    if (i < 0) return { err: "malformed token" }
    const claims = token.slice(0, i)
    const got = Buffer.from(token.slice(i + 1), "utf8")
    const want = Buffer.from(this.tokenMAC(claims).toString("base64url"), "utf8")
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
      return { err: "token signature does not match" }
    }
    const dot = claims.indexOf(".")
    if (dot < 0) return { err: "malformed token claims" }
    const nameText = claims.slice(0, dot)
    const expText = claims.slice(dot + 1)
    if (!INT64.test(expText)) return { err: "parsing token expiry: invalid syntax" }
    if (this.now() >= Number(expText)) return { err: "token expired" }
    if (!/^[A-Za-z0-9_-]*$/.test(nameText) || nameText.length % 4 === 1) {
      return { err: "decoding token name: illegal base64 data" }
    }
    const name = Buffer.from(nameText, "base64url").toString("utf8")
    const bad = validName(name)
    if (bad) return { err: "token name: " + bad }
    return { name }
  }

  // ---- webhooks: each returns [status, answer or null] ----

  connect(body) {
    const req = decode(body, "connectRequest", { socket: "socket", params: "map", auth_token: "string" })
    let token = isObject(req.params) ? str(req.params.token) : ""
    if (token === "" && typeof req.auth_token === "string") token = req.auth_token
    const remoteIP = isObject(req.socket) ? str(req.socket.remote_ip) : ""
    const { name, err } = this.verifyToken(token)
    if (err) {
      logf(`connect: refused ${remoteIP}: ${err}`)
      return [403, struct({ status: "error" })]
    }
    logf(`connect: ${name} from ${remoteIP}`)
    return [200, struct({ status: "ok", id: "user_socket:" + name, assigns: { user: name } })]
  }

  join(body) {
    const req = decode(body, "joinRequest", { socket: "socket", topic: "string", payload: "raw", join_ref: "string" })
    const user = str(assignsOf(req).user)
    const topic = str(req.topic)
    if (user === "") return [200, joinError("unauthorized")]
    if (!topic.startsWith("room:") || topic === "room:") return [200, joinError("unknown topic")]
    const room = topic.slice("room:".length)
    if (room.startsWith("private-") && !(MEMBERS[room] || []).includes(user)) {
      logf(`join: ${user} refused ${topic}: not a member`)
      return [200, joinError("not a member")]
    }
    logf(`join: ${user} joined ${topic}`)
    return [200, struct({ response: { joined: topic }, assigns: { room } })]
  }

  handleIn(body) {
    const req = decode(body, "eventRequest", {
      socket: "socket", topic: "string", event: "string", payload: "raw", binary: "bytes", ref: "string", join_ref: "string",
    })
    const binary = typeof req.binary === "string" ? decodeStd(req.binary) : null
    const assigns = assignsOf(req)
    const user = str(assigns.user)
    const room = str(assigns.room)
    const nick = str(assigns.nick)
    const event = str(req.event)

    if (event === "echo") {
      // Binary in, binary out; JSON in, JSON out.
      if (binary !== null) {
        const r = struct({ status: "ok" })
        if (binary.length > 0) r.binary = binary.toString("base64")
        return [200, struct({ reply: r })]
      }
      const payload = objectPayload(req.payload)
      if (payload === null) return [200, replyError("payload must be a JSON object")]
      return [200, struct({ reply: okReply(payload) })]
    }
    const payload = objectPayload(req.payload)
    if (payload === null || binary !== null) return [200, replyError("payload must be a JSON object")]

    switch (event) {
      case "new_msg":
      case "shout": {
        const text = str(payload.body)
        if (trimSpace(text) === "") return [200, replyError("body must be a non-empty string")]
        if (Buffer.byteLength(text, "utf8") > MAX_MESSAGE_LEN) {
          return [200, replyError(`body is longer than ${MAX_MESSAGE_LEN} bytes`)]
        }
        const msg = [struct({ event, payload: chatMessage(user, nick, text) })]
        // new_msg: everyone in the room, the sender included; shout: all but the sender.
        const key = event === "new_msg" ? "broadcast" : "broadcast_from"
        return [200, struct({ [key]: msg, reply: okReply({}) })]
      }
      case "whoami": {
        const who = { user, room }
        if (nick !== "") who.nick = nick
        return [200, struct({ reply: okReply(who) })]
      }
      case "rename": {
        const newNick = trimSpace(str(payload.nick))
        if (newNick === "" || [...newNick].length > MAX_NAME_LEN) {
          return [200, replyError(`nick must have 1 to ${MAX_NAME_LEN} characters`)]
        }
        // Only "nick" changes; "user" and "room" keep their values.
        return [200, struct({ assigns: { nick: newNick }, reply: okReply({ nick: newNick }) })]
      }
      case "bye":
        // The reply comes first, then phx_close; no leave webhook follows.
        return [200, struct({ reply: okReply({}), stop: struct({ reason: "bye" }) })]
      case "ping_me":
        // A push to this socket only, and no reply (Phoenix's :noreply).
        return [200, struct({ push: [struct({ event: "pong", payload })] })]
      default:
        return [200, replyError("unknown event")]
    }
  }

  leave(body) {
    const req = decode(body, "leaveRequest", { socket: "socket", topic: "string", reason: "string" })
    const user = str(assignsOf(req).user)
    logf(`leave: ${user} left ${str(req.topic)} (${str(req.reason)})`)
    return [204, null]
  }

  // ---- HTTP ----

  routes() {
    return {
      "/login": (req, res) => this.serveLogin(req, res),
      "/socket/connect": this.hook("connect", (b) => this.connect(b)),
      "/channels/join": this.hook("join", (b) => this.join(b)),
      "/channels/event": this.hook("handle_in", (b) => this.handleIn(b)),
      "/channels/leave": this.hook("leave", (b) => this.leave(b)),
    }
  }

  hook(event, h) {
    return async (req, res) => {
      const body = await readBody(req)
      if (body === null) return writeJSON(res, 413, errorBody("body too large"), true)
      const got = firstHeader(req, EVENT_HEADER)
      if (got !== event) {
        logf(`${req.url.split("?")[0]}: refused: X-Channels-Event is ${goQuote(got)}`)
        return writeJSON(res, 400, errorBody(`X-Channels-Event must be ${event}`))
      }
      if (this.secret.length > 0) {
        const err = verifySignature(this.secret, firstHeader(req, SIGNATURE_HEADER), body, this.now())
        if (err) {
          logf(`${event}: refused: ${err}`)
          return writeJSON(res, 401, errorBody("invalid signature"))
        }
      }
      let status, answer
      try {
        ;[status, answer] = h(body)
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
        const what = event === "handle_in" ? "handle_in" : event
        ;[status, answer] = [400, errorBody(`decoding ${what} request: ${err.message}`)]
      }
      writeJSON(res, status, answer)
    }
  }

  // serveLogin answers POST /login: a form or JSON {"name": …} gets
  // {"token": …}. This demo has no passwords: any valid name logs in.
  async serveLogin(req, res) {
    const body = await readBody(req)
    const mediaType = (firstHeader(req, "content-type").split(";")[0] || "").trim().toLowerCase()
    let name
    if (mediaType === "application/json") {
      if (body === null) return writeJSON(res, 400, errorBody("decoding body: http: request body too large"), true)
      const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(body)
      if (text.trim() === "") return writeJSON(res, 400, errorBody("decoding body: EOF"))
      let v
      try {
        v = JSON.parse(text)
      } catch (err) {
        const msg = /end of JSON input|Unterminated/.test(err.message) ? "unexpected EOF" : err.message
        return writeJSON(res, 400, errorBody("decoding body: " + msg))
      }
      if (v !== null && !isObject(v)) {
        return writeJSON(res, 400, errorBody(`decoding body: json: cannot unmarshal ${jsonKind(v)} into Go value of type struct { Name string "json:\\"name\\"" }`))
      }
      const n = v === null ? null : v.name
      if (n !== null && n !== undefined && typeof n !== "string") {
        return writeJSON(res, 400, errorBody(`decoding body: json: cannot unmarshal ${jsonKind(n)} into Go struct field .name of type string`))
      }
      name = n || ""
    } else {
      const query = req.url.includes("?") ? req.url.slice(req.url.indexOf("?") + 1) : ""
      let form = new Map()
      let err = null
      if (mediaType === "application/x-www-form-urlencoded") {
        if (body === null) err = "http: request body too large"
        else ({ form, err } = parseQuery(body.toString("latin1")))
      }
      if (err === null) err = parseQuery(query).err
      if (err !== null) return writeJSON(res, 400, errorBody("decoding form: " + err))
      name = form.get("name") ?? ""
    }
    const { token, err } = this.issueToken(name)
    if (err) return writeJSON(res, 400, errorBody(err))
    logf(`login: ${name}`)
    writeJSON(res, 200, { token })
  }
}

// parseQuery parses a query string like Go's url.ParseQuery: the first
// value of each key, the first error.
function parseQuery(s) {
  const form = new Map()
  let err = null
  for (const part of s.split("&")) {
    if (part === "") continue
    if (part.includes(";")) {
      err ??= "invalid semicolon separator in query"
      continue
    }
    const eq = part.indexOf("=")
    const rawKey = eq < 0 ? part : part.slice(0, eq)
    const rawValue = eq < 0 ? "" : part.slice(eq + 1)
    const key = queryUnescape(rawKey)
    const value = queryUnescape(rawValue)
    if (key.err || value.err) {
      err ??= key.err || value.err
      continue
    }
    if (!form.has(key.s)) form.set(key.s, value.s)
  }
  return { form, err }
}

function queryUnescape(s) {
  const bytes = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (s[i] === "%") {
      const hex = s.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return { err: `invalid URL escape ${goQuote(s.slice(i, i + 3))}` }
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (s[i] === "+") bytes.push(0x20)
    else bytes.push(c & 0xff)
  }
  return { s: Buffer.from(bytes).toString("utf8") }
}

function firstHeader(req, name) {
  const v = req.headersDistinct[name]
  return v && v.length > 0 ? v[0] : ""
}

// readBody returns the request body, or null if it is larger than MAX_BODY.
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    let done = false
    req.on("data", (chunk) => {
      if (done) return
      size += chunk.length
      if (size > MAX_BODY) {
        done = true
        req.pause()
        resolve(null)
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks))
    })
    req.on("error", reject)
  })
}

function errorBody(msg) {
  return { error: msg }
}

function joinError(reason) {
  return struct({ status: "error", response: { reason } })
}

function okReply(response) {
  return struct({ status: "ok", response })
}

function replyError(reason) {
  return struct({ reply: struct({ status: "error", response: { reason } }) })
}

function chatMessage(user, nick, text) {
  const msg = { user, body: text }
  if (nick !== "") msg.nick = nick
  return msg
}

// objectPayload returns a JSON object payload (null or absent is {}), or
// null if the payload is not an object.
function objectPayload(raw) {
  if (raw === undefined || raw === null) return {}
  if (!isObject(raw) || hasNonFinite(raw)) return null
  return raw
}

// writeJSON writes status and, unless answer is null, answer as JSON.
function writeJSON(res, status, answer, close = false) {
  if (close) res.setHeader("Connection", "close")
  if (answer === null) {
    res.writeHead(status)
    res.end()
    return
  }
  const body = goJSON(answer) + "\n"
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) })
  res.end(body)
}

function plain(res, status, text, headers = {}) {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  })
  res.end(text)
}

// ---- main ----

function parseFlags(argv, env) {
  const flags = { listen: env.LISTEN || "127.0.0.1:3000", insecure: false }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z]+)(?:=(.*))?$/.exec(argv[i])
    if (!m) throw new Error(`unexpected argument ${argv[i]}`)
    const [, name, inline] = m
    if (name === "listen") {
      const value = inline ?? argv[++i]
      if (value === undefined) throw new Error("flag needs an argument: -listen")
      flags.listen = value
    } else if (name === "insecure") {
      flags.insecure = inline === undefined || inline === "true" || inline === "1"
    } else if (name === "h" || name === "help") {
      process.stderr.write("usage: server.mjs [--listen host:port] [--insecure]\n")
      process.exit(0)
    } else {
      throw new Error(`flag provided but not defined: -${name}`)
    }
  }
  return flags
}

function main() {
  let flags
  try {
    flags = parseFlags(process.argv.slice(2), process.env)
  } catch (err) {
    process.stderr.write(`backend: ${err.message}\n`)
    process.exit(2)
  }
  const secret = process.env.CHANNELS_WEBHOOK_SECRET || ""
  if (secret === "" && !flags.insecure) {
    process.stderr.write("backend: CHANNELS_WEBHOOK_SECRET is not set (use -insecure to run without signature checks)\n")
    process.exit(1)
  }
  if (secret === "") logf("warning: no CHANNELS_WEBHOOK_SECRET: webhook signatures are not checked")
  const colon = flags.listen.lastIndexOf(":")
  const host = flags.listen.slice(0, colon).replace(/^\[|\]$/g, "") || "0.0.0.0"
  const port = Number(flags.listen.slice(colon + 1))
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`backend: invalid listen address ${flags.listen}\n`)
    process.exit(1)
  }

  const app = new App(secret)
  const routes = app.routes()
  const server = http.createServer(async (req, res) => {
    const path = req.url.split("?")[0]
    const route = routes[path]
    if (!route) return plain(res, 404, "404 page not found\n")
    if (req.method !== "POST") return plain(res, 405, "Method Not Allowed\n", { Allow: "POST" })
    try {
      await route(req, res)
    } catch (err) {
      logf(`${path}: ${err.stack || err}`)
      if (!res.headersSent) plain(res, 500, "internal error\n")
    }
  })
  // As the Go app's http.Server: 5 s for headers, 10 s per request, 2 min idle.
  server.headersTimeout = 5000
  server.requestTimeout = 10000
  server.keepAliveTimeout = 120000
  server.on("error", (err) => {
    process.stderr.write(`backend: serving on ${flags.listen}: ${err.message}\n`)
    process.exit(1)
  })
  server.listen(port, host, () => {
    const addr = server.address()
    const shown = addr.family === "IPv6" ? `[${addr.address}]` : addr.address
    logf(`listening on http://${shown}:${addr.port}`)
  })
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      server.close(() => process.exit(0))
      server.closeIdleConnections()
      setTimeout(() => process.exit(0), 5000).unref()
    })
  }
}

main()
