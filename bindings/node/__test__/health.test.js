// The tcp-probe transport (by spec string) against real listening sockets on 127.0.0.1.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { PeerList } = require('..')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function listen(port = 0) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((sock) => sock.destroy())
    srv.once('error', reject)
    srv.listen(port, '127.0.0.1', () => resolve(srv))
  })
}

const close = (srv) => new Promise((r) => srv.close(() => r()))

function status(list, id) {
  const p = list.introspect().peers.find((x) => x.id === id)
  assert.ok(p, `${id} not in list`)
  return p.status
}

async function waitStatus(list, id, want) {
  const t0 = Date.now()
  while (status(list, id) !== want) {
    assert.ok(Date.now() - t0 < 5000, `${id} never became ${want} (${status(list, id)})`)
    await sleep(5)
  }
  return Date.now() - t0
}

test('tcp-probe follows a real socket going away and coming back', async () => {
  let srv = await listen()
  const port = srv.address().port
  const id = `127.0.0.1:${port}`
  const list = new PeerList({ transport: 'tcp-probe?interval_ms=50&timeout_ms=50' })
  assert.equal(list.introspect().transport, 'tcp-probe')
  list.update({ add: [id] })
  list.start()
  await waitStatus(list, id, 'available')
  const c = list.choose({ timeoutMs: 1000 })
  assert.equal(c.peer, id)
  c.finish()
  await close(srv)
  await waitStatus(list, id, 'unavailable')
  assert.throws(() => list.choose({ timeoutMs: 20 }), { code: 'PEERLB_TIMEOUT' })
  srv = await listen(port)
  await waitStatus(list, id, 'available')
  list.stop()
  await close(srv)
})

test('bad transport specs are PEERLB_INVALID_ARGUMENT', () => {
  for (const spec of ['udp-probe', 'tcp-probe?interval_ms=0', 'tcp-probe?x=1', 'tcp-probe?', 'always-available?a=b']) {
    assert.throws(() => new PeerList({ transport: spec }), { code: 'PEERLB_INVALID_ARGUMENT' }, spec)
  }
  assert.equal(new PeerList({ transport: 'always-available' }).introspect().transport, 'always-available')
})
