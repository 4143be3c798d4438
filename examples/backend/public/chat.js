// The example chat page: messages, who is online (phoenix.js Presence) and
// catch-up after a reload or a reconnect (the channel's history and the
// `_since` join parameter, see "History and catch-up" in the README).
//
// What survives a reload lives in sessionStorage (one copy per tab): the
// name, the room, the messages shown so far and the position of the newest
// one. After a reload the page shows the stored messages and rejoins with
// {_since: <that position>}: the server replays exactly the messages sent
// meanwhile, in order, before any live one. phoenix.js re-evaluates the join
// params on every rejoin, so a dropped connection catches up the same way.

// The stock Phoenix client, unmodified; pin the version you test against.
import {Socket, Presence} from "/vendor/phoenix.mjs"

const STORE = "channels-chat" // the sessionStorage key
const KEEP = 200 // messages kept for a reload (the Caddyfile keeps history 200)

const $ = id => document.getElementById(id)
const log = $("log")
const say = $("say")
const login = $("login")
const users = $("users")
const status = $("status")

// session: {name, room, last, messages: [{kind, who, body, pos}]}; last is
// the position ("<epoch>:<seq>") of the newest message seen, or null.
let session = null
let socket = null
let channel = null
// generation counts logins: callbacks of a replaced socket do nothing.
let generation = 0

function save() {
  if (session) sessionStorage.setItem(STORE, JSON.stringify(session))
}

function restore() {
  try {
    const s = JSON.parse(sessionStorage.getItem(STORE))
    if (s && typeof s.name === "string" && typeof s.room === "string" && Array.isArray(s.messages)) return s
  } catch {}
  return null
}

// position splits "<epoch>:<seq>"; null if pos is not a position (phoenix.js
// passes the frame's ref, which only history channels set to one).
function position(pos) {
  if (typeof pos !== "string") return null
  const i = pos.lastIndexOf(":")
  const seq = Number(pos.slice(i + 1))
  return i > 0 && Number.isInteger(seq) ? {epoch: pos.slice(0, i), seq} : null
}

// advance moves session.last to pos if pos is newer (or of another stream).
function advance(pos) {
  const p = position(pos)
  if (!p) return
  const cur = position(session.last)
  if (!cur || cur.epoch !== p.epoch || p.seq > cur.seq) session.last = pos
}

function scrollDown() {
  log.scrollTop = log.scrollHeight
}

// note shows a line from the page itself; notes are not kept for a reload.
function note(text) {
  const line = document.createElement("div")
  line.className = "sys"
  line.textContent = text
  log.append(line)
  scrollDown()
}

// showMessage renders one chat message. Never innerHTML: messages come
// from other users.
function showMessage(m) {
  const line = document.createElement("div")
  line.className = m.kind === "shout" ? "msg shout" : "msg"
  if (m.pos) line.dataset.pos = m.pos
  const who = document.createElement("span")
  who.className = "who"
  who.textContent = m.who
  const body = document.createElement("span")
  body.className = "body"
  body.textContent = m.body
  line.append(who, m.kind === "shout" ? " SHOUTS: " : ": ", body)
  log.append(line)
  scrollDown()
}

// received handles a broadcast: shown, kept, and its position remembered.
function received(gen, kind, payload, ref) {
  if (gen !== generation) return
  const m = {kind, who: payload.nick || payload.user, body: String(payload.body), pos: ref || null}
  session.messages.push(m)
  if (session.messages.length > KEEP) session.messages.splice(0, session.messages.length - KEEP)
  advance(ref)
  save()
  showMessage(m)
}

function setStatus(text, cls) {
  status.textContent = text
  status.className = cls || ""
}

function enableInput(on) {
  say.elements.body.disabled = !on
  say.elements.send.disabled = !on
  if (on) say.elements.body.focus()
}

// showOnline renders the presence list: one entry per user, with the
// number of tabs (metas) when there are several.
function showOnline(presence) {
  const list = presence.list((user, {metas}) => ({
    user,
    tabs: metas.length,
    since: metas.map(m => m.online_at).filter(Boolean).sort()[0],
  }))
  list.sort((a, b) => a.user.localeCompare(b.user))
  users.replaceChildren(...list.map(p => {
    const li = document.createElement("li")
    li.dataset.user = p.user
    li.dataset.tabs = p.tabs
    li.append(p.user)
    const extra = []
    if (p.user === session.name) extra.push("you")
    if (p.tabs > 1) extra.push(`${p.tabs} tabs`)
    if (extra.length) {
      const small = document.createElement("span")
      small.className = "extra"
      small.textContent = ` (${extra.join(", ")})`
      li.append(small)
    }
    const since = p.since && new Date(p.since)
    if (since && !isNaN(since)) li.title = `online since ${since.toLocaleTimeString()}`
    return li
  }))
  $("online-count").textContent = list.length
}

// start logs session.name in and joins session.room, catching up from
// session.last when there is one.
async function start() {
  const gen = ++generation
  if (socket) socket.disconnect()
  socket = channel = null
  users.replaceChildren()
  $("online-count").textContent = 0
  enableInput(false)
  $("logout").disabled = false
  setStatus("logging in…")

  let token
  try {
    const res = await fetch("/login", {method: "POST", body: new URLSearchParams({name: session.name})})
    const answer = await res.json()
    if (!res.ok) throw new Error(answer.error || res.statusText)
    token = answer.token
  } catch (err) {
    if (gen === generation) {
      setStatus("not logged in", "bad")
      note(`login failed: ${err.message}`)
    }
    return
  }
  if (gen !== generation) return

  const s = socket = new Socket("/socket", {params: {token}})
  s.onOpen(() => gen === generation && setStatus(`connected as ${session.name}`, "ok"))
  s.onError(() => gen === generation && setStatus("connection lost; retrying…", "bad"))
  s.connect()

  // The params function runs on every (re)join: it names the last message
  // seen, so the server replays what came after it.
  let since = null
  const ch = channel = s.channel(session.room, () => {
    since = session.last
    return since ? {_since: since} : {}
  })
  const presence = new Presence(ch)
  presence.onSync(() => gen === generation && showOnline(presence))
  ch.on("new_msg", (m, ref) => received(gen, "msg", m, ref))
  ch.on("shout", (m, ref) => received(gen, "shout", m, ref))
  ch.on("pong", () => gen === generation && note("pong (pushed to you only)"))
  ch.onClose(() => {
    if (gen !== generation) return
    note("left the room")
    enableInput(false)
  })
  ch.join()
    .receive("ok", r => {
      if (gen !== generation) return
      if (r._recovered === true) {
        note(`rejoined ${r.joined}: caught up since message ${position(since).seq}`)
      } else if (r._recovered === false) {
        note(`rejoined ${r.joined}: the room's history no longer reaches back to your last message; some messages may be missing`)
        session.last = r._position
      } else {
        note(`joined ${r.joined}`)
        if (!session.last) session.last = r._position
      }
      save()
      enableInput(true)
    })
    .receive("error", r => gen === generation && note(`join refused: ${r.reason}`))
}

login.addEventListener("submit", e => {
  e.preventDefault()
  const form = new FormData(login)
  session = {name: form.get("name").trim(), room: form.get("room").trim(), last: null, messages: []}
  log.replaceChildren()
  save()
  start()
})

$("logout").addEventListener("click", () => {
  generation++
  if (socket) socket.disconnect()
  socket = channel = session = null
  sessionStorage.removeItem(STORE)
  log.replaceChildren()
  users.replaceChildren()
  $("online-count").textContent = 0
  enableInput(false)
  $("logout").disabled = true
  setStatus("not logged in")
})

say.addEventListener("submit", e => {
  e.preventDefault()
  const text = say.elements.body.value.trim()
  if (!text || !channel) return
  say.elements.body.value = ""
  const [cmd, ...rest] = text.split(" ")
  const arg = rest.join(" ")
  const push =
    cmd === "/nick" ? channel.push("rename", {nick: arg}) :
    cmd === "/whoami" ? channel.push("whoami", {}) :
    cmd === "/shout" ? channel.push("shout", {body: arg}) :
    cmd === "/ping" ? channel.push("ping_me", {}) :
    cmd === "/bye" ? channel.push("bye", {}) :
    channel.push("new_msg", {body: text})
  push.receive("ok", r => { if (Object.keys(r).length) note(JSON.stringify(r)) })
  push.receive("error", r => note(`error: ${r.reason}`))
  push.receive("timeout", () => note("no answer from the server (yet)"))
  if (cmd === "/shout") note(`you shout: ${arg}`) // broadcast_from skips the sender
})

// A reload: show what this tab had, then rejoin and catch up.
session = restore()
if (session) {
  login.elements.name.value = session.name
  login.elements.room.value = session.room
  session.messages.forEach(showMessage)
  start()
}
