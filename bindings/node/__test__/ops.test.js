// Operability from Node: names and metrics, circuit breakers (PEERLB_OVERLOADED), the admin
// endpoint driven by a real HTTP client (fetch), and the http-probe transport against an
// HTTP server this test runs and flips between 200 and 503.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')

const peerlb = require('..')
const { PeerList } = peerlb

function running(name, options = {}) {
  const list = new PeerList({ name, shuffle: false, ...options })
  list.update({ add: ['a:1', 'b:1'] })
  list.start()
  return list
}

test('names and metrics', () => {
  const list = running('node-metrics')
  assert.equal(list.name, 'node-metrics')
  assert.equal(list.introspect().name, 'node-metrics')
  list.choose().finish()
  list.choose().finish('failure', 3)
  const text = list.metrics()
  assert.ok(text.includes('peerlb_chosen_total{list="node-metrics",peer="a:1"} 1\n'), text)
  assert.ok(text.includes('peerlb_finished_total{list="node-metrics",peer="b:1",outcome="failure"} 1\n'), text)
  assert.ok(text.includes('peerlb_request_duration_seconds_count{list="node-metrics",peer="b:1"} 1\n'), text)
  assert.ok(peerlb.metrics().includes('peerlb_peers{list="node-metrics"} 2'))
  assert.match(new PeerList().name, /^list-\d+$/)
  assert.equal(new PeerList({ metrics: false }).metrics(), '')
  const collapsed = running('node-collapsed', { peerLabels: false })
  collapsed.choose().finish()
  assert.ok(collapsed.metrics().includes('peerlb_chosen_total{list="node-collapsed"} 1\n'))
})

test('bad options are refused with a code', () => {
  for (const options of [{ name: 'two words' }, { name: '' }, { maxPending: 0 }, { maxPendingPerPeer: 0 },
    { maxPending: -1 }, { maxPending: 1.5 }, { maxPending: Infinity }]) {
    assert.throws(() => new PeerList(options), { code: 'PEERLB_INVALID_ARGUMENT' }, JSON.stringify(options))
  }
  assert.throws(() => new PeerList({ name: 5 }), TypeError)
  assert.throws(() => new PeerList({ metrics: 'yes' }), TypeError)
})

test('circuit breakers throw PEERLB_OVERLOADED', async () => {
  assert.equal(peerlb.errorCodes.overloaded, 'PEERLB_OVERLOADED')
  const list = running('node-breakers', { maxPending: 3, maxPendingPerPeer: 1 })
  const a = list.choose({ timeoutMs: 2000 })
  const b = list.choose({ timeoutMs: 2000 })
  assert.throws(() => list.choose({ timeoutMs: 2000 }), { code: 'PEERLB_OVERLOADED' })
  await assert.rejects(list.chooseAsync({ timeoutMs: 2000 }), { code: 'PEERLB_OVERLOADED' })
  const info = list.introspect()
  assert.deepEqual([info.max_pending, info.max_pending_per_peer, info.overloaded, info.pending], [3, 1, 2, 2])
  a.finish()
  assert.equal(list.choose().peer, 'a:1')
  b.finish()
})

async function request(url, { method = 'GET', body, token } = {}) {
  const headers = token ? { authorization: `Bearer ${token}` } : {}
  const response = await fetch(url, { method, body, headers })
  const text = await response.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return [response.status, json]
}

test('the admin endpoint with a real HTTP client', async () => {
  const list = running('node-admin')
  const admin = peerlb.serveAdmin(':0', { token: 's3cret' })
  try {
    assert.equal(admin.url, `http://127.0.0.1:${admin.port}`)
    const base = `${admin.url}/lists/node-admin`
    let [status, body] = await request(`${admin.url}/lists`)
    assert.equal(status, 401)
    assert.equal(body.error, 'unauthorized')
    ;[status, body] = await request(`${admin.url}/lists`, { token: 's3cret' })
    assert.equal(status, 200)
    assert.ok(body.some((l) => l.name === 'node-admin'))
    ;[status, body] = await request(`${base}/backends/a:1/disable`, { method: 'POST', token: 's3cret' })
    assert.equal(status, 200)
    assert.equal(body.result, 'success')
    assert.equal(body.code, peerlb.AdminResult.SUCCESS)
    ;[status, body] = await request(`${base}/backends/a:1/disable`, { method: 'POST', token: 's3cret' })
    assert.equal(body.code, peerlb.AdminResult.NO_ACTION_REQUIRED)
    assert.equal(list.introspect().disabled, 1)
    ;[status, body] = await request(`${base}/backends`, { method: 'POST', body: '{"id":"c:1","weight":2}', token: 's3cret' })
    assert.equal(status, 201)
    assert.equal(body.backend.weight, 2)
    assert.equal(body.code, 1)
    ;[status, body] = await request(`${base}/backends`, { method: 'POST', body: '{"id":"c:1"}', token: 's3cret' })
    assert.equal(status, 409)
    assert.deepEqual([body.result, body.code, body.error], ['failed', 4, 'peer-already-in-list'])
    ;[status, body] = await request(`${base}/backends`, { method: 'POST', body: '{nope', token: 's3cret' })
    assert.equal(status, 400)
    assert.equal(body.error, 'invalid-argument')
    ;[status, body] = await request(`${base}/backends/zzz`, { token: 's3cret' })
    assert.equal(status, 404)
    assert.equal(body.error, 'peer-not-in-list')
    ;[status] = await request(`${base}/backends`, { method: 'PUT', token: 's3cret' })
    assert.equal(status, 405)
    ;[status, body] = await request(`${admin.url}/metrics`, { token: 's3cret' })
    assert.equal(status, 200)
    assert.ok(body.includes('peerlb_peer_disabled{list="node-admin",peer="a:1"} 1'))
  } finally {
    admin.stop()
  }
  await assert.rejects(fetch(`${admin.url}/lists`))
  assert.throws(() => peerlb.serveAdmin('not an address'), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => peerlb.serveAdmin(':0', { token: 'has space' }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => peerlb.serveAdmin(9901), TypeError)
})

function statusOf(list) {
  return list.introspect().peers[0].status
}

async function waitStatus(list, want) {
  const deadline = Date.now() + 20000
  while (statusOf(list) !== want) {
    assert.ok(Date.now() < deadline, `never ${want}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('http-probe follows a server flipping between 200 and 503', async () => {
  let up = true
  const server = http.createServer((req, res) => {
    res.writeHead(up ? 200 : 503, { 'content-length': '0' })
    res.end()
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const id = `127.0.0.1:${server.address().port}`
  const list = new PeerList({ transport: 'http-probe?path=/healthz&interval_ms=50&unhealthy_threshold=2' })
  try {
    list.update({ add: [id] })
    list.start()
    assert.equal(list.introspect().transport, 'http-probe')
    await waitStatus(list, 'available')
    up = false
    await waitStatus(list, 'unavailable')
    up = true
    await waitStatus(list, 'available')
  } finally {
    list.stop()
    server.close()
  }
  assert.equal(new PeerList({ transport: 'grpc-health?service=x' }).introspect().transport, 'grpc-health')
  assert.throws(() => new PeerList({ transport: 'http-probe?path=healthz' }), { code: 'PEERLB_INVALID_ARGUMENT' })
})
