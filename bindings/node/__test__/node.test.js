// Node-only cases: argument types, error shapes, JS transports that throw or re-enter,
// concurrent async waiters, clean process exit, worker threads, ESM.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { pathToFileURL } = require('node:url')
const { Worker } = require('node:worker_threads')
const peerlb = require('..')
const { PeerList, Choice, errorCodes } = peerlb

const pkgDir = path.resolve(__dirname, '..')

function started(peers = ['a', 'b'], opts = {}) {
  const list = new PeerList({ shuffle: false, ...opts })
  list.update({ add: peers })
  list.start()
  return list
}

/** A transport whose peers stay unavailable until setStatus is called on `subs`. */
function manualTransport() {
  return {
    subs: new Map(),
    calls: [],
    retain(id, sub) {
      this.calls.push(`retain ${id}`)
      this.subs.set(id, sub)
    },
    release(id) {
      this.calls.push(`release ${id}`)
    },
  }
}

function runNode(args, opts = {}) {
  return spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30000, ...opts })
}

test('error codes map 1:1 to the core codes', () => {
  assert.equal(Object.keys(errorCodes).length, 16)
  assert.equal(errorCodes['overloaded'], 'PEERLB_OVERLOADED')
  assert.equal(errorCodes['already-finished'], 'PEERLB_ALREADY_FINISHED')
  assert.equal(errorCodes['internal'], 'PEERLB_INTERNAL')
  assert.equal(errorCodes['retry-exhausted'], 'PEERLB_RETRY_EXHAUSTED')
  assert.equal(errorCodes['declined'], 'PEERLB_DECLINED')
  assert.equal(errorCodes['source-failed'], 'PEERLB_SOURCE_FAILED')
  assert.equal(errorCodes['no-peer-available'], 'PEERLB_NO_PEER_AVAILABLE')
  assert.equal(errorCodes['timeout'], 'PEERLB_TIMEOUT')
  for (const [kebab, code] of Object.entries(errorCodes)) {
    assert.equal(code, 'PEERLB_' + kebab.toUpperCase().replace(/-/g, '_'))
  }
})

test('wrong argument types are TypeErrors and leave the list intact', () => {
  const bad = [
    () => new PeerList(42),
    () => new PeerList({ strategy: 7 }),
    () => new PeerList({ shuffle: 'yes' }),
    () => new PeerList({ failFast: 1 }),
    () => new PeerList({ seed: 'x' }),
    () => new PeerList({ transport: {} }),
    () => new PeerList({ transport: { retain() {} } }),
    () => new PeerList({ transport: 5 }),
  ]
  for (const f of bad) assert.throws(f, TypeError)
  const list = started()
  const badCalls = [
    () => list.update('a'),
    () => list.update({ add: 'a' }),
    () => list.update({ add: [1] }),
    () => list.update({ add: [{ id: 1 }] }),
    () => list.update({ add: [{ id: 'z', weight: '2' }] }),
    () => list.update({ remove: [null] }),
    () => list.choose(5),
    () => list.choose({ timeoutMs: '10' }),
    () => list.choose({ shardKey: 12 }),
  ]
  for (const f of badCalls) assert.throws(f, (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE')
  const c = list.choose()
  assert.throws(() => c.finish(3), TypeError)
  assert.throws(() => c.finish('ok', 'slow'), TypeError)
  assert.equal(c.finished, false)
  c.finish()
  assert.equal(list.introspect().total, 2)
  assert.equal(list.introspect().peers[0].pending, 0)
})

test('chooseAsync rejects (does not throw) on wrong types', async () => {
  const list = started()
  let p
  assert.doesNotThrow(() => {
    p = list.chooseAsync({ timeoutMs: 'soon' })
  })
  await assert.rejects(p, TypeError)
})

test('invalid values are PEERLB_INVALID_ARGUMENT errors', () => {
  const code = (e) => e instanceof Error && e.code === 'PEERLB_INVALID_ARGUMENT'
  assert.throws(() => new PeerList({ strategy: 'nope' }), code)
  assert.throws(() => new PeerList({ seed: -1 }), code)
  assert.throws(() => new PeerList({ transport: 'carrier-pigeon' }), code)
  const list = started()
  assert.throws(() => list.choose({ timeoutMs: -1 }), code)
  assert.throws(() => list.update({ add: [''] }), code)
  assert.throws(() => list.update({ add: ['a'.repeat(1025)] }), code)
  assert.throws(() => list.update({ add: [{ id: 'w', weight: 1.5 }] }), code)
  const c = list.choose()
  assert.throws(() => c.finish('meh'), code)
  assert.throws(() => c.finish('ok', -3), code)
  assert.equal(c.finish('failure', 12.5), true)
})

test('combined errors carry .errors with individual codes; valid parts still apply', () => {
  const list = started(['a'])
  const err = assert.throws(() => list.update({ add: ['a', 'b'], remove: ['zz'] }), (e) => {
    assert.equal(e.code, 'PEERLB_MULTIPLE_ERRORS')
    assert.deepEqual(
      e.errors.map((x) => x.code),
      ['PEERLB_PEER_NOT_IN_LIST', 'PEERLB_PEER_ALREADY_IN_LIST'],
    )
    assert.ok(e.errors.every((x) => x instanceof Error))
    return true
  })
  void err
  assert.equal(list.introspect().total, 2)
})

test('choose errors: not started, fail fast, no deadline, timeout', async () => {
  const idle = new PeerList()
  assert.throws(() => idle.choose(), { code: 'PEERLB_NOT_STARTED' })
  await assert.rejects(idle.chooseAsync({ timeoutMs: 10 }), { code: 'PEERLB_NOT_STARTED' })
  const ff = new PeerList({ failFast: true })
  ff.start()
  assert.throws(() => ff.choose({ timeoutMs: 1000 }), { code: 'PEERLB_NO_PEER_AVAILABLE' })
  const empty = new PeerList()
  empty.start()
  assert.throws(() => empty.choose(), { code: 'PEERLB_NO_DEADLINE' })
  assert.throws(() => empty.choose({ timeoutMs: 5 }), { code: 'PEERLB_TIMEOUT' })
  const t0 = Date.now()
  await assert.rejects(empty.chooseAsync({ timeoutMs: 30 }), (e) => e instanceof Error && e.code === 'PEERLB_TIMEOUT')
  assert.ok(Date.now() - t0 >= 25)
})

test('choices: peer, finish once, cancel, shard keys, dispose', () => {
  const list = started(['a', 'b'], { strategy: 'fewest-pending' })
  const c1 = list.choose({ shardKey: 'user-1' })
  const c2 = list.choose({ shardKey: Buffer.from('user-2'), timeoutMs: 100 })
  const c3 = list.choose({ shardKey: new Uint8Array([1, 2, 3]) })
  assert.ok(c1 instanceof Choice)
  assert.deepEqual([c1.peer, c2.peer].sort(), ['a', 'b'])
  const pending = () => list.introspect().peers.reduce((n, p) => n + p.pending, 0)
  assert.equal(pending(), 3)
  assert.equal(c1.finish(), true)
  assert.throws(() => c1.finish(), { code: 'PEERLB_ALREADY_FINISHED' })
  assert.equal(c2.cancel(), true)
  assert.equal(c2.finished, true)
  if (typeof Symbol.dispose === 'symbol') {
    c3[Symbol.dispose]()
    assert.equal(c3.finished, true)
  } else {
    c3.cancel()
  }
  assert.equal(pending(), 0)
  assert.match(String(c1), /Choice\(.*finished\)/)
})

test('update accepts {id, weight} and introspect returns a plain object', () => {
  const list = new PeerList({ shuffle: false })
  list.update({ add: ['a', { id: 'b', weight: 3 }] })
  const info = list.introspect()
  assert.equal(Object.getPrototypeOf(info), Object.prototype)
  assert.equal(info.state, 'idle')
  assert.deepEqual(
    info.peers.map((p) => [p.id, p.status, p.weight]),
    [
      ['a', 'uninitialized', 1],
      ['b', 'uninitialized', 3],
    ],
  )
  assert.equal(list.running, false)
  list.start()
  assert.equal(list.running, true)
})

test('a transport that throws makes the operation fail, not crash', () => {
  const thrown = [
    new Error('boom'),
    'a string',
    42,
    Symbol('sym'),
    undefined,
    { toString() { throw new Error('nested') } },
    { get message() { throw new Error('hostile getter') } },
  ]
  for (const value of thrown) {
    const t = {
      retain(id, sub) {
        if (id === 'bad') throw value
        sub.setStatus('available')
      },
      release(id) {
        if (id === 'bad2') throw value
      },
    }
    const list = new PeerList({ shuffle: false, transport: t })
    list.update({ add: ['ok', 'bad'] })
    assert.throws(
      () => list.start(),
      (e) => e instanceof Error && e.code === 'PEERLB_TRANSPORT_FAILED' && /retain/.test(e.message),
    )
    assert.deepEqual(
      list.introspect().peers.map((p) => p.id),
      ['ok'],
    )
    assert.equal(list.choose().peer, 'ok')
    list.update({ add: ['bad2'] })
    assert.throws(() => list.update({ remove: ['bad2'] }), { code: 'PEERLB_TRANSPORT_FAILED' })
    assert.equal(list.introspect().total, 1)
  }
})

test('transport callbacks see the same subscriber object in retain and release', () => {
  const seen = new Map()
  let same = null
  const t = {
    name: 'mine',
    retain(id, sub) {
      assert.equal(sub.peerId, id)
      seen.set(id, sub)
      sub.setStatus('available')
    },
    release(id, sub) {
      same = seen.get(id) === sub
    },
  }
  const list = new PeerList({ transport: t })
  list.update({ add: ['a'] })
  list.start()
  assert.equal(list.introspect().transport, 'mine')
  list.stop()
  assert.equal(same, true)
  const stale = seen.get('a')
  assert.equal(stale.setStatus('available'), false)
  assert.throws(() => stale.setStatus('sleepy'), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => stale.setStatus(2), TypeError)
})

test('a transport may re-enter the list from retain and release', () => {
  let list
  const t = {
    retain(id, sub) {
      sub.setStatus('connecting')
      if (id === 'seed') {
        list.update({ add: ['child'] }) // nested update from inside retain
        assert.equal(list.introspect().total, 2)
      }
      sub.setStatus('available')
    },
    release(id) {
      if (id === 'child') list.update({ add: ['after'] })
    },
  }
  list = new PeerList({ shuffle: false, transport: t })
  list.update({ add: ['seed'] })
  list.start()
  assert.deepEqual(
    list.introspect().peers.map((p) => [p.id, p.status]),
    [
      ['seed', 'available'],
      ['child', 'available'],
    ],
  )
  list.update({ remove: ['child'] })
  assert.deepEqual(
    list.introspect().peers.map((p) => p.id),
    ['seed', 'after'],
  )
  // choose and stop from inside a callback, too
  const t2 = {
    retain(id, sub) {
      sub.setStatus('available')
      // the peer is offered once retain returns, so a choose in here finds none yet
      assert.throws(() => list2.choose(), { code: 'PEERLB_NO_DEADLINE' })
    },
    release() {},
  }
  const list2 = new PeerList({ transport: t2 })
  list2.start()
  list2.update({ add: ['x'] })
  assert.equal(list2.introspect().available, 1)
})

test('many concurrent chooseAsync waiters resolve when a peer becomes available', async () => {
  const t = manualTransport()
  const list = new PeerList({ transport: t, strategy: 'fewest-pending' })
  list.update({ add: ['a', 'b'] })
  list.start()
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const waiters = Array.from({ length: 200 }, () => list.chooseAsync({ timeoutMs: 5000 }))
  // The event loop keeps running while 200 choices wait (the test runner's timeout bounds this).
  while (ticks < 3) await new Promise((r) => setTimeout(r, 5))
  t.subs.get('b').setStatus('available')
  const choices = await Promise.all(waiters)
  clearInterval(timer)
  assert.equal(choices.length, 200)
  assert.ok(choices.every((c) => c.peer === 'b'))
  assert.equal(list.introspect().peers[1].pending, 200)
  for (const c of choices) c.finish()
  assert.equal(list.introspect().peers[1].pending, 0)
})

test('stop wakes async waiters with PEERLB_NOT_STARTED', async () => {
  const list = new PeerList({ transport: manualTransport() })
  list.update({ add: ['a'] })
  list.start()
  const p = list.chooseAsync({ timeoutMs: 5000 })
  setTimeout(() => list.stop(), 10)
  await assert.rejects(p, { code: 'PEERLB_NOT_STARTED' })
})

test('a script that leaves lists alive exits by itself', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const t = { retain(id, s) { s.setStatus('available') }, release() {} }
    const lists = []
    for (let i = 0; i < 20; i++) {
      const l = new PeerList({ transport: i % 2 ? t : undefined })
      l.update({ add: ['a', 'b'] }); l.start(); lists.push(l)
      l.choose().peer
    }
    const idle = new PeerList({ transport: { retain() {}, release() {} } })
    idle.update({ add: ['x'] }); idle.start()
    idle.chooseAsync({ timeoutMs: 100 }).catch((e) => console.log(e.code))
    globalThis.keep = lists
    console.log('done')
  `
  const t0 = Date.now()
  const r = runNode(['-e', script])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'done\nPEERLB_TIMEOUT\n')
  assert.ok(Date.now() - t0 < 20000)
})

test('a running list dropped on a library thread releases through the JS thread', () => {
  // Uses the internal native list so that a pending async wait (on a library thread) holds
  // the last handle of the core list; the public wrapper's Promise keeps its list alive.
  const script = `
    const { _native } = require(${JSON.stringify(pkgDir)})
    const calls = []
    const t = { retain(id) { calls.push('retain ' + id) }, release(id) { calls.push('release ' + id) } }
    ;(function () {
      const n = new _native.NativeList({ shuffle: false, transport: t })
      n.update({ add: ['down'] }); n.start()
      _native.chooseAsync(n.id, 200, undefined).then((v) => calls.push(v instanceof Error ? v.code : 'chosen'))
    })()
    setTimeout(() => { gc(); gc(); calls.push('gc') }, 20)
    const deadline = Date.now() + 20000
    ;(function wait() {
      if (calls.length < 4 && Date.now() < deadline) return setTimeout(wait, 10)
      console.log(JSON.stringify(calls))
    })()
  `
  const r = runNode(['--expose-gc', '-e', script])
  assert.equal(r.status, 0, r.stderr)
  const calls = JSON.parse(r.stdout)
  // The release comes while the process runs (not at exit), after the list's last JS handle
  // was collected; the wait's timeout may be reported before or after it.
  assert.deepEqual([...calls].sort(), ['PEERLB_TIMEOUT', 'gc', 'release down', 'retain down'])
  assert.equal(calls[0], 'retain down')
  assert.ok(calls.indexOf('gc') < calls.indexOf('release down'), calls.join())
})

test('garbage-collected running lists release their peers later, on the JS thread', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const calls = []
    const t = { retain(id, s) { s.setStatus('available') }, release(id) { calls.push(id) } }
    ;(function () { for (let i = 0; i < 5; i++) { const l = new PeerList({ transport: t }); l.update({ add: ['p' + i] }); l.start() } })()
    const deadline = Date.now() + 20000
    setTimeout(function wait() {
      gc()
      if (calls.length < 5 && Date.now() < deadline) return setTimeout(wait, 10)
      console.log(calls.sort().join())
    }, 10)
  `
  const r = runNode(['--expose-gc', '-e', script])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'p0,p1,p2,p3,p4')
})

test('an unfinished choice keeps its list alive (ids are not reused under it)', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    function make(id) { const l = new PeerList(); l.update({ add: [id] }); l.start(); return l }
    const old = make('old').choose()
    gc(); gc()
    const fresh = make('fresh')
    const held = fresh.choose()
    console.log(old.peer, old.finish(), held.peer, fresh.introspect().peers[0].pending)
  `
  const r = runNode(['--expose-gc', '-e', script])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'old true fresh 1')
})

test('worker threads use their own lists', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { PeerList } = require(workerData.pkg)
    const t = { retain(id, s) { s.setStatus('available') }, release() {} }
    const l = new PeerList({ shuffle: false, transport: t })
    l.update({ add: ['w' + workerData.n + 'a', 'w' + workerData.n + 'b'] })
    l.start()
    const got = []
    for (let i = 0; i < 4; i++) { const c = l.choose(); got.push(c.peer); c.finish() }
    const empty = new PeerList(); empty.start()
    empty.chooseAsync({ timeoutMs: 20 }).catch((e) => {
      parentPort.postMessage({ got, code: e.code })
    })
  `
  const runs = [1, 2, 3].map(
    (n) =>
      new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { pkg: pkgDir, n } })
        let msg
        w.on('message', (m) => (msg = m))
        w.on('error', reject)
        w.on('exit', (exitCode) => (exitCode === 0 ? resolve(msg) : reject(new Error(`worker exit ${exitCode}`))))
      }),
  )
  const results = await Promise.all(runs)
  results.forEach((m, i) => {
    const n = i + 1
    assert.deepEqual(m.got, [`w${n}a`, `w${n}b`, `w${n}a`, `w${n}b`])
    assert.equal(m.code, 'PEERLB_TIMEOUT')
  })
  // A worker terminated while a choice waits and its lists are running.
  const w = new Worker(
    `const { PeerList } = require(${JSON.stringify(pkgDir)})
     const l = new PeerList({ transport: { retain() {}, release() {} } })
     l.update({ add: ['x'] }); l.start()
     l.chooseAsync({ timeoutMs: 60000 }).catch(() => {})
     require('node:worker_threads').parentPort.postMessage('ready')`,
    { eval: true },
  )
  await new Promise((r) => w.once('message', r))
  await w.terminate()
  // the main thread's list still works
  assert.equal(started(['m']).choose().peer, 'm')
})

test('ESM import and CommonJS require give the same API', () => {
  const url = pathToFileURL(path.join(pkgDir, 'index.mjs')).href
  const r = runNode([
    '--input-type=module',
    '-e',
    `import peerlb, { PeerList, errorCodes } from ${JSON.stringify(url)}
     const l = new PeerList({ shuffle: false }); l.update({ add: ['e'] }); l.start()
     const c = await l.chooseAsync({ timeoutMs: 10 }); c.finish()
     console.log(c.peer, errorCodes.timeout, typeof peerlb.PeerList)`,
  ])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'e PEERLB_TIMEOUT function')
  assert.equal(typeof peerlb.PeerList, 'function')
})
