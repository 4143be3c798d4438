// The example chat page (examples/backend/public) in headless Chromium,
// driven by playwright-core. TestBrowserChat in ../browser_test.go starts
// the example chat app and a Caddy running examples/backend/Caddyfile, then
// runs this file with:
//
//   CHANNELS_PAGE_URL    the page, http://localhost:9080/
//   CHANNELS_CHROMIUM    the browser (Debian's /usr/bin/chromium)
//   CHANNELS_ARTIFACTS   where every screenshot goes
//   CHANNELS_SCREENSHOTS optional: where chat.png and presence.png go too
//
// Every wait is on a condition in the page, bounded by WAIT.

import { test } from "node:test"
import assert from "node:assert/strict"
import { mkdirSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"

const PAGE = process.env.CHANNELS_PAGE_URL || "http://localhost:9080/"
const CHROMIUM = process.env.CHANNELS_CHROMIUM || "/usr/bin/chromium"
const ARTIFACTS = process.env.CHANNELS_ARTIFACTS || mkdtempSync(join(tmpdir(), "channels-browser-"))
const SCREENSHOTS = process.env.CHANNELS_SCREENSHOTS || ""
// WAIT bounds every wait for something the page should show.
const WAIT = 10000
const VIEWPORT = { width: 960, height: 620 }

// A fresh room per run: history outlives a page, and reruns must not see
// an earlier run's messages.
const ROOM = `room:browser-${Date.now().toString(36)}`

// messages is what the page's log shows as chat messages, in order.
function messages(page) {
  return page.$$eval("#log .msg", (lines) => lines.map((l) => l.textContent))
}

// online is the page's presence list: user and number of tabs.
function online(page) {
  return page.$$eval("#users li", (lis) => lis.map((li) => `${li.dataset.user}×${li.dataset.tabs}`))
}

// until waits for check(await read(page)) and fails with what the page
// showed last.
async function until(page, what, read, check) {
  const deadline = Date.now() + WAIT
  let last
  for (;;) {
    last = await read(page)
    if (check(last)) return last
    if (Date.now() > deadline) assert.fail(`${page.user}: timed out after ${WAIT} ms waiting for ${what}; the page shows ${JSON.stringify(last)}`)
    // Polling through playwright: each read is a round trip to the page.
    await page.waitForTimeout(25)
  }
}

const same = (want) => (got) => JSON.stringify(got) === JSON.stringify(want)

// shoot writes a screenshot to ARTIFACTS, and to SCREENSHOTS under docs.
async function shoot(page, name, docs) {
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path })
  console.log(`screenshot ${path}`)
  if (docs && SCREENSHOTS) {
    mkdirSync(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOTS, docs) })
    console.log(`screenshot ${join(SCREENSHOTS, docs)}`)
  }
}

test("two users chat, see each other online, and a reload catches up on what it missed, once", { timeout: 45000 }, async (t) => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  })
  t.after(() => browser.close())
  const errors = []

  // open gives user a browser context of its own (its own sessionStorage).
  async function open(user) {
    const context = await browser.newContext({ viewport: VIEWPORT })
    const page = await context.newPage()
    page.user = user
    page.on("pageerror", (err) => errors.push(`${user}: ${err.message}`))
    page.on("console", (msg) => { if (msg.type() === "error") console.log(`[${user}] console: ${msg.text()}`) })
    page.setDefaultTimeout(WAIT)
    return page
  }

  async function logIn(page, name = page.user) {
    await page.goto(PAGE)
    await page.fill("#login input[name=name]", name)
    await page.fill("#login input[name=room]", ROOM)
    await page.click("#login button:not([type=button])")
    await page.waitForSelector("#say input[name=body]:enabled")
    await page.waitForSelector(`#users li[data-user="${name}"]`)
  }

  async function say(page, text) {
    await page.fill("#say input[name=body]", text)
    await page.press("#say input[name=body]", "Enter")
  }

  const alice = await open("alice")
  const bob = await open("bob")
  await logIn(alice)
  await logIn(bob)

  // Presence: each sees both.
  for (const page of [alice, bob]) {
    await until(page, "alice and bob online", online, same(["alice×1", "bob×1"]))
  }
  assert.match(await bob.textContent('#users li[data-user="bob"]'), /\(you\)/)

  // Chat: each sees the other's message, in the same order.
  await say(alice, "hi bob")
  for (const page of [alice, bob]) await until(page, "alice's message", messages, same(["alice: hi bob"]))
  await say(bob, "hi alice, how are you?")
  const before = ["alice: hi bob", "bob: hi alice, how are you?"]
  for (const page of [alice, bob]) await until(page, "bob's message", messages, same(before))
  await shoot(alice, "01-alice-chat")
  await shoot(bob, "02-bob-chat")

  // Reload alice's page and hold its copy of phoenix.js: by then the old
  // document (and its socket) is gone and the new one has not connected.
  // Routing disables the HTTP cache, so the request always comes here.
  let release, intercepted
  const held = new Promise((resolve) => { release = resolve })
  const reached = new Promise((resolve) => { intercepted = resolve })
  await alice.route("**/vendor/phoenix.mjs", async (route) => {
    intercepted()
    await held
    await route.continue()
  })
  const reloaded = alice.reload()
  reloaded.catch(() => {}) // awaited below; an earlier failure must not make it unhandled
  await Promise.race([reached, alice.waitForTimeout(WAIT).then(() => assert.fail("the reload never requested phoenix.mjs"))])

  // While alice is away: bob sees her leave, and writes.
  await until(bob, "alice to go offline", online, same(["bob×1"]))
  await shoot(bob, "03-bob-alone")
  await say(bob, "while you were away")
  const missed = [...before, "bob: while you were away"]
  await until(bob, "bob's message in his own log", messages, same(missed))

  release()
  await reloaded
  await alice.unroute("**/vendor/phoenix.mjs")

  // After the reload: the kept messages, then the missed one, once.
  await alice.waitForSelector("#say input[name=body]:enabled")
  await until(alice, "the catch-up", messages, same(missed))
  assert.match(await alice.textContent("#log"), /caught up since message 2/)
  for (const page of [alice, bob]) {
    await until(page, "alice and bob online after the reload", online, same(["alice×1", "bob×1"]))
  }
  // A live message after the catch-up: any late duplicate of the replay
  // would arrive before it.
  await say(bob, "welcome back")
  const all = [...missed, "bob: welcome back"]
  await until(alice, "the live message after the catch-up", messages, same(all))
  await say(alice, "thanks, I did not miss a thing")
  const final = [...all, "alice: thanks, I did not miss a thing"]
  for (const page of [alice, bob]) await until(page, "alice's answer", messages, same(final))
  await shoot(alice, "04-alice-after-reload", "chat.png")

  // A second tab of alice: one user, two metas.
  const tab = await alice.context().newPage()
  tab.user = "alice (second tab)"
  tab.on("pageerror", (err) => errors.push(`${tab.user}: ${err.message}`))
  tab.setDefaultTimeout(WAIT)
  await logIn(tab, "alice")
  // The second tab is a new visitor: it gets the room's latest messages (on_join).
  await until(tab, "the room's recent messages", messages, same(final))
  await until(bob, "alice's two tabs", online, same(["alice×2", "bob×1"]))
  assert.match(await bob.textContent('#users li[data-user="alice"]'), /2 tabs/)
  await shoot(bob, "05-bob-presence", "presence.png")
  await tab.close()
  await until(bob, "alice back to one tab", online, same(["alice×1", "bob×1"]))

  assert.deepEqual(errors, [], "errors in the pages")
})
