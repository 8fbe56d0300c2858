// Real sockets: four local TCP servers, one closed mid-run. Ejection (no probe) takes the
// closed one out after 5 failed connects and brings it back after the ejection time (manual
// clock); the tcp-probe transport marks it unavailable (event 'unavailable'). Nothing here
// depends on speed: requests run one after another, and waits are for events.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { performance } = require('node:perf_hooks')
const { PeerList, ManualClock } = require('..')

/** A TCP server on 127.0.0.1 counting the connections it accepted. */
async function server(port = 0) {
  const s = { connections: 0, sockets: new Set() }
  s.server = net.createServer((sock) => {
    s.connections++
    s.sockets.add(sock)
    sock.on('close', () => s.sockets.delete(sock))
    sock.on('error', () => {})
    sock.end('ok\n')
  })
  await new Promise((resolve, reject) => {
    s.server.once('error', reject)
    s.server.listen(port, '127.0.0.1', resolve)
  })
  s.port = s.server.address().port
  s.id = `127.0.0.1:${s.port}`
  s.close = () =>
    new Promise((resolve) => {
      for (const sock of s.sockets) sock.destroy()
      s.server.close(() => resolve())
    })
  return s
}

/** One request: choose, connect, read the reply; a failed connect finishes as 'failure'. */
async function request(list) {
  const choice = list.choose()
  const ok = await new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port: Number(choice.peer.split(':')[1]) })
    sock.on('error', () => resolve(false))
    sock.on('data', () => {})
    sock.on('end', () => {
      sock.destroy()
      resolve(true)
    })
  })
  choice.finish(ok ? 'ok' : 'failure')
  return { peer: choice.peer, ok }
}

test('ejection without a probe: a closed server gets no requests after 5 failures, and returns after the ejection time', async () => {
  const servers = await Promise.all([server(), server(), server(), server()])
  const [, , , victim] = servers
  const clock = new ManualClock()
  const list = new PeerList({ shuffle: false, clock })
  const events = []
  list.subscribe((e) => events.push(`${e.kind} ${e.peer}`))
  list.update({ add: servers.map((s) => s.id) })
  list.start()
  try {
    for (let i = 0; i < 20; i++) assert.equal((await request(list)).ok, true)
    for (const s of servers) assert.equal(s.connections, 5)
    await victim.close()

    const results = []
    for (let i = 0; i < 60; i++) results.push(await request(list))
    const toVictim = results.filter((r) => r.peer === victim.id)
    assert.equal(toVictim.length, 5, 'the closed server got exactly 5 requests')
    assert.ok(toVictim.every((r) => !r.ok))
    const lastFailure = results.findLastIndex((r) => r.peer === victim.id)
    assert.ok(results.slice(lastFailure + 1).every((r) => r.ok && r.peer !== victim.id))
    assert.deepEqual(events.filter((e) => e.startsWith('ejected') || e.startsWith('restored')), [`ejected ${victim.id}`])
    const peer = list.introspect().peers.find((p) => p.id === victim.id)
    assert.equal(peer.ejected, true)
    assert.equal(peer.failures, 5)
    assert.equal(peer.ejected_for_ms, 30000)

    // The server comes back on the same port; the ejection time passes.
    const back = await server(victim.port)
    clock.advance(30000)
    assert.equal(events.at(-1), `restored ${victim.id}`)
    const after = []
    for (let i = 0; i < 8; i++) after.push(await request(list))
    assert.ok(after.every((r) => r.ok))
    assert.equal(after.filter((r) => r.peer === victim.id).length, 2)
    assert.equal(back.connections, 2)
    await back.close()
  } finally {
    list.stop()
    await Promise.all(servers.slice(0, 3).map((s) => s.close()))
  }
})

test('tcp-probe: a closed server becomes unavailable (event) and gets no more requests', async (t) => {
  const servers = await Promise.all([server(), server(), server(), server()])
  const victim = servers[2]
  const intervalMs = 100
  const timeoutMs = 100
  const list = new PeerList({
    shuffle: false,
    ejection: false,
    transport: `tcp-probe?interval_ms=${intervalMs}&timeout_ms=${timeoutMs}`,
  })
  // Events from the probe come from a library thread and never keep the process alive:
  // this interval does while the test waits for them.
  const keepAlive = setInterval(() => {}, 1000)
  const waiters = []
  const events = []
  list.subscribe((e) => {
    events.push({ ...e, at: performance.now() })
    for (const w of waiters.slice()) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(e)
      }
    }
  })
  const waitFor = (pred) =>
    new Promise((resolve) => {
      const seen = events.find(pred)
      if (seen) resolve(seen)
      else waiters.push({ pred, resolve })
    })
  try {
    list.update({ add: servers.map((s) => s.id) })
    list.start()
    await Promise.all(servers.map((s) => waitFor((e) => e.kind === 'available' && e.peer === s.id)))
    assert.equal(list.introspect().available, 4)

    const closedAt = performance.now()
    await victim.close()
    const e = await waitFor((ev) => ev.kind === 'unavailable' && ev.peer === victim.id)
    const detectedMs = performance.now() - closedAt
    t.diagnostic(`unavailable ${detectedMs.toFixed(0)} ms after close (interval ${intervalMs} + timeout ${timeoutMs})`)
    assert.equal(e.peer, victim.id)
    const info = list.introspect()
    assert.equal(info.available, 3)
    assert.equal(info.peers.find((p) => p.id === victim.id).status, 'unavailable')
    for (let i = 0; i < 12; i++) {
      const r = await request(list)
      assert.notEqual(r.peer, victim.id)
      assert.equal(r.ok, true)
    }
  } finally {
    clearInterval(keepAlive)
    list.stop()
    await Promise.all(servers.filter((s) => s !== victim).map((s) => s.close()))
  }
})
