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

const { Upstream } = require('..')

test('Upstream: the Go numbers step by step with a JS check (sync throw = failure)', async () => {
  const calls = []
  const u = new Upstream({
    backends: ['one', 'two', 'three'],
    manual: true,
    check: (b) => {
      calls.push(b)
      if (b === 'two') throw new Error('down')
    },
  })
  assert.deepEqual([u.pick(), u.pick(), u.pick(), u.pick()], ['one', 'two', 'three', 'one'])
  const seen = []
  for (let i = 0; i < 5; i++) {
    await u.checkNow()
    seen.push([u.score('one'), u.score('two')])
  }
  assert.deepEqual(seen, [[2, 0], [3, -1], [3, -2], [3, -3], [3, -3]])
  assert.equal(calls.length, 15)
  assert.deepEqual([u.pick(), u.pick(), u.pick()], ['three', 'one', 'three'])
  for (const want of [-2, -1, 0]) {
    u.up('two')
    assert.equal(u.score('two'), want)
  }
  u.reconcile(['two', 'four'])
  assert.deepEqual(u.scores(), { two: 0, four: 1 })
  assert.deepEqual(u.backends, ['two', 'four'])
  u.down('two')
  u.down('four')
  u.down('four')
  assert.throws(() => u.pick(), { code: 'PEERLB_NO_PEER_AVAILABLE' })
  assert.equal(u.score('nobody'), undefined)
  u.shutdown()
})

test('Upstream: async checks, false, rejections and hung promises', async () => {
  const u = new Upstream({
    backends: ['ok', 'false', 'rejects', 'hangs'],
    manual: true,
    timeoutMs: 100,
    check: async (b) => {
      if (b === 'false') return false
      if (b === 'rejects') throw new Error('nope')
      if (b === 'hangs') return new Promise(() => {})
      await sleep(5)
      return true
    },
  })
  await u.checkNow()
  assert.deepEqual(u.scores(), { ok: 2, false: 0, rejects: 0, hangs: 0 })
  await u.checkNow()
  assert.deepEqual(u.scores(), { ok: 3, false: -1, rejects: -1, hangs: -1 })
  u.shutdown()
})

test('Upstream: bad arguments', () => {
  const inv = { code: 'PEERLB_INVALID_ARGUMENT' }
  assert.throws(() => new Upstream({ backends: ['a'], lowScore: 1 }), inv)
  assert.throws(() => new Upstream({ backends: ['a'], failDelta: 0 }), inv)
  assert.throws(() => new Upstream({ backends: ['a'], timeoutMs: 0 }), inv)
  assert.throws(() => new Upstream({ backends: ['a'], timeoutMs: NaN }), inv)
  assert.throws(() => new Upstream({ backends: ['a'], intervalMs: -1 }), inv)
  assert.throws(() => new Upstream({ backends: [''] }), inv)
  assert.throws(() => new Upstream({ backends: ['a'], check: 'udp-probe' }), inv)
  assert.throws(() => new Upstream({ backends: 'a:1' }), TypeError)
  assert.throws(() => new Upstream({ backends: [1] }), TypeError)
  assert.throws(() => new Upstream({ backends: ['a'], check: 42 }), TypeError)
  assert.throws(() => new Upstream({ backends: ['a'], highScore: '3' }), TypeError)
  const u = new Upstream({ backends: ['a'], manual: true })
  assert.throws(() => u.reconcile(['a', null]), TypeError)
  assert.throws(() => u.reconcile(['']), inv)
  assert.throws(() => u.up(5), TypeError)
  assert.deepEqual(u.backends, ['a'])
})

test('Upstream: TCP probe against a real socket', async () => {
  let srv = await listen()
  const port = srv.address().port
  const id = `127.0.0.1:${port}`
  const u = new Upstream({ backends: [id], intervalMs: 20, timeoutMs: 50 })
  const wait = async (pred) => {
    const t0 = Date.now()
    while (!pred(u.score(id))) {
      assert.ok(Date.now() - t0 < 5000, JSON.stringify(u.scores()))
      await sleep(5)
    }
  }
  await wait((s) => s === 3)
  assert.equal(u.pick(), id)
  await close(srv)
  await wait((s) => s < 0)
  assert.throws(() => u.pick(), { code: 'PEERLB_NO_PEER_AVAILABLE' })
  srv = await listen(port)
  await wait((s) => s >= 0)
  assert.equal(u.pick(), id)
  u.shutdown()
  await close(srv)
})

test('Upstream: background JS checks do not keep the process alive', () => {
  const { spawnSync } = require('node:child_process')
  const path = require('node:path')
  // The checks run every 10 ms; the script waits (a ref'd timer, deadline 20 s) until the
  // score reached the top, then returns: the background checks must not keep it running.
  const code = `const {Upstream}=require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const u=new Upstream({backends:['a'],intervalMs:10,check:()=>true});
    const deadline=Date.now()+20000;
    (function wait(){ if(u.score('a')<3&&Date.now()<deadline) return setTimeout(wait,5); console.log(u.score('a')) })()`
  const r = spawnSync(process.execPath, ['-e', code], { timeout: 60000, encoding: 'utf8' })
  assert.equal(r.signal, null, `did not exit by itself\n${r.stdout}${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), '3')
})
