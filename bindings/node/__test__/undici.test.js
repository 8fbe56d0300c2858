// peerlb/undici against real local HTTP servers: Node's own fetch, undici's request and
// fetch, setGlobalDispatcher, and a handler with undici's new callbacks. Nothing here
// depends on speed: waits end on events, and the only time bounds are seconds wide (a
// timeout that was not honoured would take forever).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const undici = require('undici')
const { PeerList, RequestRule, RetryBudget } = require('..')
const { Dispatcher } = require('../undici')
const { start, totalHits, selfSigned, SlowToStart, lateness } = require('./http_backends')

const URL = 'http://service.test:8080'

function runningList(backends, options = {}) {
  const list = new PeerList({ shuffle: false, ...options })
  list.update({ add: backends.map((b) => b.peer) })
  list.start()
  return list
}

const ejected = (list, peer) => list.listBackends().some((p) => p.id === peer && p.ejected)

async function killAll(backends, dispatcher) {
  await dispatcher?.close()
  await Promise.all(backends.map((b) => b.kill()))
}

test("Node's fetch: a killed backend costs no errors and is ejected", async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const dispatcher = new Dispatcher(list)
  let errors = 0
  for (let i = 0; i < 400; i++) {
    if (i === 200) await backends[2].kill()
    try {
      const r = await fetch(`${URL}/`, { dispatcher })
      await r.text()
      if (r.status !== 200) errors++
    } catch (err) {
      errors++
      console.log(`request ${i}: ${err.message} (${err.cause?.code})`)
    }
  }
  assert.equal(errors, 0)
  assert.ok(ejected(list, backends[2].peer))
  assert.ok(backends.every((b, i) => i === 2 || b.hits > 100))
  await killAll(backends, dispatcher)
})

test('undici.request: the Host header is the URL\'s; a POST is not retried once sent; a GET is', async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const dispatcher = new Dispatcher(list)
  for (let i = 0; i < 8; i++) {
    const r = await undici.request(`${URL}/path?q=1`, { dispatcher })
    assert.equal(await r.body.text(), `server=${i % 4} host=service.test:8080`)
  }
  let before = totalHits(backends)
  let r = await undici.request(`${URL}/fail`, { dispatcher, method: 'POST', body: 'order=1' })
  await r.body.dump()
  assert.equal(r.statusCode, 503)
  assert.equal(totalHits(backends) - before, 1)
  before = totalHits(backends)
  r = await undici.request(`${URL}/fail`, { dispatcher })
  await r.body.dump()
  assert.equal(r.statusCode, 503) // the last attempt's answer
  assert.equal(totalHits(backends) - before, 3)
  before = totalHits(backends)
  r = await undici.request(`${URL}/fail`, { dispatcher, method: 'POST', body: 'x', idempotent: true })
  await r.body.dump()
  assert.equal(totalHits(backends) - before, 3) // opted in with undici's own `idempotent`
  await killAll(backends, dispatcher)
})

test('a POST that never connected goes to another peer', async () => {
  const backends = await start(4)
  const list = runningList(backends, { ejection: false })
  const dispatcher = new Dispatcher(list)
  await backends[0].kill()
  for (let i = 0; i < 8; i++) {
    const r = await undici.request(`${URL}/`, { dispatcher, method: 'POST', body: 'order=1' })
    await r.body.dump()
    assert.equal(r.statusCode, 200)
  }
  await killAll(backends, dispatcher)
})

test('setGlobalDispatcher: plain fetch calls are balanced', async () => {
  const backends = await start(2)
  const list = runningList(backends)
  const dispatcher = new Dispatcher(list)
  const previous = undici.getGlobalDispatcher()
  undici.setGlobalDispatcher(dispatcher)
  try {
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${URL}/`) // Node's own fetch
      assert.match(await r.text(), /^server=\d host=service.test:8080$/)
      const u = await undici.fetch(`${URL}/`)
      assert.match(await u.text(), /^server=\d host=service.test:8080$/)
    }
  } finally {
    undici.setGlobalDispatcher(previous)
  }
  assert.deepEqual(backends.map((b) => b.hits), [4, 4])
  await killAll(backends, dispatcher)
})

test('the budget stops a retry storm', async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const rule = new RequestRule({ budget: new RetryBudget({ ratio: 0.1, minPerSec: 0 }) })
  const dispatcher = new Dispatcher(list, { rule })
  const before = totalHits(backends)
  for (let i = 0; i < 100; i++) {
    const r = await undici.request(`${URL}/fail`, { dispatcher })
    await r.body.dump()
    assert.equal(r.statusCode, 503)
  }
  const attempts = totalHits(backends) - before
  console.log(`100 failing GETs under a 10% budget: ${attempts} attempts (300 without it)`)
  assert.ok(attempts <= 110, `${attempts} attempts`)
  await killAll(backends, dispatcher)
})

test('timeouts are honoured: per attempt (headersTimeout), and the rule\'s for the whole request', async () => {
  const backends = await start(4)
  const list = runningList(backends, { ejection: false })
  const dispatcher = new Dispatcher(list)
  let before = totalHits(backends)
  let t0 = performance.now()
  await assert.rejects(undici.request(`${URL}/hang`, { dispatcher, headersTimeout: 200 }), { code: 'UND_ERR_HEADERS_TIMEOUT' })
  assert.ok(performance.now() - t0 < 10000)
  assert.equal(totalHits(backends) - before, 3)
  const bounded = new Dispatcher(list, { rule: new RequestRule({ timeoutMs: 300 }) })
  before = totalHits(backends)
  t0 = performance.now()
  await assert.rejects(fetch(`${URL}/hang`, { dispatcher: bounded }), (err) => err.cause?.code === 'UND_ERR_HEADERS_TIMEOUT')
  const took = performance.now() - t0
  console.log(`fetch /hang under a rule timeout of 300 ms: rejected after ${took.toFixed(0)} ms`)
  assert.ok(took < 10000)
  await killAll(backends, dispatcher)
  await bounded.close()
})

test('waiting for a peer does not block the event loop', async () => {
  const backends = await start(4)
  const transport = new SlowToStart()
  const list = new PeerList({ transport })
  list.update({ add: backends.map((b) => b.peer) })
  list.start()
  const dispatcher = new Dispatcher(list, { rule: new RequestRule({ timeoutMs: 20000 }) })
  let phase = 'waiting'
  const worst = await lateness(async () => {
    setTimeout(() => {
      phase = 'sending'
      transport.releaseAll()
    }, 2000)
    const responses = await Promise.all(Array.from({ length: 100 }, () => fetch(`${URL}/`, { dispatcher })))
    for (const r of responses) {
      assert.equal(r.status, 200)
      await r.text()
    }
  }, () => phase)
  console.log(
    `longest timer lateness: ${worst.waiting.toFixed(1)} ms while 100 fetches waited 2 s for a peer, ` +
      `${(worst.sending ?? 0).toFixed(1)} ms while they were sent`,
  )
  assert.ok(worst.waiting < 1000)
  await killAll(backends, dispatcher)
})

test('https: the TLS server name and certificate are the URL\'s host', async () => {
  const tls = selfSigned('service.test')
  const backends = await start(2, tls)
  const list = runningList(backends)
  const dispatcher = new Dispatcher(list, { agentOptions: { connect: { ca: tls.cert } } })
  for (let i = 0; i < 4; i++) {
    const r = await undici.request('https://service.test:8443/', { dispatcher })
    assert.equal(await r.body.text(), `server=${i % 2} host=service.test:8443`)
  }
  assert.ok(backends.every((b) => b.serverNames.size === 1 && b.serverNames.has('service.test')))
  await killAll(backends, dispatcher)
})

test("a handler with undici's new callbacks", async () => {
  const backends = await start(2)
  const list = runningList(backends)
  const dispatcher = new Dispatcher(list)
  await backends[0].kill()
  const events = []
  const body = await new Promise((resolve, reject) => {
    const chunks = []
    dispatcher.dispatch(
      { origin: URL, path: '/', method: 'GET' },
      {
        onRequestStart(controller) {
          events.push('start')
          assert.equal(typeof controller.abort, 'function')
        },
        onResponseStart(controller, statusCode, headers) {
          events.push(`response ${statusCode} ${headers['content-length']}`)
        },
        onResponseData(controller, chunk) {
          chunks.push(chunk)
        },
        onResponseEnd() {
          events.push('end')
          resolve(Buffer.concat(chunks).toString())
        },
        onResponseError(controller, err) {
          reject(err)
        },
      },
    )
  })
  assert.equal(body, 'server=1 host=service.test:8080')
  assert.deepEqual(events, ['start', `response 200 ${body.length}`, 'end'])
  await killAll(backends, dispatcher)
})

test('a classifier overrides the rule', async () => {
  const backends = await start(4)
  const list = runningList(backends)
  const seen = []
  const classify = (request, response, error) => {
    seen.push([request.method, request.path, response?.statusCode, error])
    return response?.statusCode === 503 ? 'declined' : null
  }
  const dispatcher = new Dispatcher(list, { classify })
  const before = totalHits(backends)
  const r = await undici.request(`${URL}/fail`, { dispatcher })
  await r.body.dump()
  assert.equal(r.statusCode, 503)
  assert.equal(totalHits(backends) - before, 1) // declined: not retried
  assert.deepEqual(seen, [['GET', '/fail', 503, null]])
  assert.ok(list.listBackends().every((p) => p.failures === 0))
  await killAll(backends, dispatcher)
})

test('no peer, and bad arguments', async () => {
  const list = new PeerList()
  const dispatcher = new Dispatcher(list)
  await assert.rejects(fetch(`${URL}/`, { dispatcher }), (err) => err.cause?.code === 'PEERLB_NOT_STARTED')
  await assert.rejects(undici.request(`${URL}/`, { dispatcher }), { code: 'PEERLB_NOT_STARTED' })
  list.update({ add: ['no-port-here'] })
  list.start()
  await assert.rejects(undici.request(`${URL}/`, { dispatcher }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new Dispatcher({}), TypeError)
  assert.throws(() => new Dispatcher(list, { rule: { maxAttempts: 2 } }), TypeError)
  assert.throws(() => new Dispatcher(list, { classify: 'declined' }), TypeError)
  assert.throws(() => new Dispatcher(list, { inner: {} }), TypeError)
  assert.throws(() => new RequestRule({ maxAttempts: 0 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new RequestRule({ failureStatuses: '5xx' }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new RequestRule({ failureStatuses: [500, 700] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new RequestRule({ timeoutMs: -1 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new RequestRule({ budget: 'off' }), TypeError)
  const rule = new RequestRule({ failureStatuses: [502, 503, 504], maxAttempts: 2, budget: false })
  assert.equal(rule.spec, 'failure_statuses=502-504&max_attempts=2&budget=off')
  assert.equal(rule.maxAttempts, 2)
  assert.equal(new RequestRule().spec, '')
  await dispatcher.close()
})
