// peerlb/http against real local HTTP servers: http.get / http.request with the Agent, and
// HttpsAgent. An agent cannot send a request twice (the caller owns it), so what it retries
// is a connection that could not be made. Nothing here depends on speed: waits end on
// events or conditions, and the only time bounds are seconds wide.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const https = require('node:https')
const { PeerList, RequestRule, RetryBudget } = require('..')
const { Agent, HttpsAgent } = require('../http')
const { start, totalHits, selfSigned, SlowToStart, lateness } = require('./http_backends')

const URL = 'http://service.test:8080'

function runningList(backends, options = {}) {
  const list = new PeerList({ shuffle: false, ...options })
  list.update({ add: backends.map((b) => b.peer) })
  list.start()
  return list
}

/** One request: resolves to {status, body}, or rejects with the request's error. */
function get(url, options, body) {
  const lib = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.request(url, options, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Waits (on the event loop, up to 10 s) until `condition()` holds. */
async function until(condition) {
  const deadline = Date.now() + 10000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** How many free keep-alive sockets `agent` holds to `peer` (its pools are named `host:port:...`). */
const freeSocketsTo = (agent, peer) =>
  Object.entries(agent.freeSockets).filter(([name, socks]) => name.startsWith(`${peer}:`) && socks.length > 0).length

test('a killed backend: connections it refuses go to other peers, no errors, and it is ejected', async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const agent = new Agent(list)
  let errors = 0
  for (let i = 0; i < 400; i++) {
    if (i === 200) {
      await backends[2].kill()
      // Its keep-alive connections are reset: wait until the agent has seen them close
      // (a request sent on one would fail, and an agent cannot send it again).
      await until(() => freeSocketsTo(agent, `127.0.0.1:${backends[2].port}`) === 0)
    }
    try {
      const r = await get(`${URL}/`, { agent })
      if (r.status !== 200) errors++
    } catch (err) {
      errors++
      console.log(`request ${i}: ${err.message}`)
    }
  }
  assert.equal(errors, 0)
  assert.ok(list.listBackends().some((p) => p.id === backends[2].peer && p.ejected))
  assert.ok(backends.every((b, i) => i === 2 || b.hits > 100))
  agent.destroy()
  await Promise.all(backends.map((b) => b.kill()))
})

test('the Host header is the URL\'s; a POST answered 503 reaches one server once', async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const agent = new Agent(list)
  for (let i = 0; i < 8; i++) {
    const r = await get(`${URL}/path?q=1`, { agent })
    assert.equal(r.body, `server=${i % 4} host=service.test:8080`)
  }
  const before = totalHits(backends)
  const r = await get(`${URL}/fail`, { agent, method: 'POST' }, 'order=1')
  assert.equal(r.status, 503)
  assert.equal(totalHits(backends) - before, 1)
  const failures = list.listBackends().reduce((n, p) => n + p.failures, 0)
  assert.equal(failures, 1, 'the 503 counted against its peer')
  agent.destroy()
  await Promise.all(backends.map((b) => b.kill()))
})

test('a POST whose connection was refused goes to another peer', async () => {
  const backends = await start(4)
  const list = runningList(backends, { ejection: false })
  const agent = new Agent(list, { keepAlive: false })
  await backends[0].kill()
  for (let i = 0; i < 8; i++) {
    const r = await get(`${URL}/`, { agent, method: 'POST' }, 'order=1')
    assert.equal(r.status, 200)
  }
  assert.equal(backends[0].hits, 0)
  await Promise.all(backends.map((b) => b.kill()))
})

test('the budget stops a storm of connect retries', async () => {
  const backends = await start(4)
  for (const b of backends) await b.kill()
  const list = runningList(backends, { ejection: false })
  const rule = new RequestRule({ budget: new RetryBudget({ ratio: 0.1, minPerSec: 0 }) })
  const agent = new Agent(list, { rule })
  let errors = 0
  for (let i = 0; i < 50; i++) {
    await get(`${URL}/`, { agent }).catch(() => errors++)
  }
  const attempts = list.introspect().chosen
  console.log(`50 requests to dead peers under a 10% budget: ${attempts} connect attempts (150 without it)`)
  assert.equal(errors, 50)
  assert.ok(attempts <= 55, `${attempts} attempts`)
})

test('a request timeout (req.setTimeout) is reported as timed out', async () => {
  const backends = await start(2)
  const list = runningList(backends)
  const agent = new Agent(list)
  const t0 = performance.now()
  await assert.rejects(
    new Promise((resolve, reject) => {
      const req = http.get(`${URL}/hang`, { agent }, resolve)
      req.setTimeout(200, () => req.destroy(new Error('timed out')))
      req.on('error', reject)
    }),
    /timed out/,
  )
  assert.ok(performance.now() - t0 < 10000)
  await until(() => list.introspect().failures === 1) // reported when the request closes
  agent.destroy()
  await Promise.all(backends.map((b) => b.kill()))
})

test('waiting for a peer does not block the event loop', async () => {
  const backends = await start(4)
  const transport = new SlowToStart()
  const list = new PeerList({ transport })
  list.update({ add: backends.map((b) => b.peer) })
  list.start()
  const agent = new Agent(list, { rule: new RequestRule({ timeoutMs: 20000 }) })
  let phase = 'waiting'
  const worst = await lateness(async () => {
    setTimeout(() => {
      phase = 'sending'
      transport.releaseAll()
    }, 2000)
    const results = await Promise.all(Array.from({ length: 100 }, () => get(`${URL}/`, { agent })))
    assert.ok(results.every((r) => r.status === 200))
  }, () => phase)
  console.log(
    `longest timer lateness: ${worst.waiting.toFixed(1)} ms while 100 requests waited 2 s for a peer, ` +
      `${(worst.sending ?? 0).toFixed(1)} ms while they were sent`,
  )
  assert.ok(worst.waiting < 1000)
  agent.destroy()
  await Promise.all(backends.map((b) => b.kill()))
})

test('HttpsAgent: the TLS server name and certificate are the URL\'s host', async () => {
  const tls = selfSigned('service.test')
  const backends = await start(2, tls)
  const list = runningList(backends)
  const agent = new HttpsAgent(list, { ca: tls.cert })
  for (let i = 0; i < 4; i++) {
    const r = await get('https://service.test:8443/', { agent })
    assert.equal(r.body, `server=${i % 2} host=service.test:8443`)
  }
  assert.ok(backends.every((b) => b.serverNames.size === 1 && b.serverNames.has('service.test')))
  agent.destroy()
  await Promise.all(backends.map((b) => b.kill()))
})

test('a classifier overrides the rule; no peer; bad arguments', async () => {
  const backends = await start(2)
  const list = runningList(backends)
  const classify = (req, res) => (res?.statusCode === 503 ? 'declined' : null)
  const agent = new Agent(list, { classify })
  assert.equal((await get(`${URL}/fail`, { agent })).status, 503)
  assert.ok(list.listBackends().every((p) => p.failures === 0))
  agent.destroy()

  const idle = new PeerList()
  const idleAgent = new Agent(idle)
  await assert.rejects(get(`${URL}/`, { agent: idleAgent }), { code: 'PEERLB_NOT_STARTED' })
  assert.throws(() => new Agent('list'), TypeError)
  assert.throws(() => new Agent(list, { rule: 'x' }), TypeError)
  assert.throws(() => new HttpsAgent(list, { classify: 1 }), TypeError)
  await Promise.all(backends.map((b) => b.kill()))
})
