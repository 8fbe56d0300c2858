// Ejection options, the manual clock, admin, events and retry on the Node surface —
// bad input, subscribers that throw or re-enter, events from library threads, clean exit.
// Real sockets are in sockets.test.js.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { PeerList, ManualClock, RetryBudget, declined } = require('..')

const pkgDir = path.resolve(__dirname, '..')

function started(peers = ['a', 'b', 'c', 'd'], opts = {}) {
  const list = new PeerList({ shuffle: false, ...opts })
  list.update({ add: peers })
  list.start()
  return list
}

/** Fails `n` requests in a row on whichever peers round-robin gives. */
function fail(list, n) {
  const peers = []
  for (let i = 0; i < n; i++) {
    const c = list.choose()
    peers.push(c.peer)
    c.finish('failure')
  }
  return peers
}

/** A snapshot that must not change when a bad call is refused. */
function snapshot(list) {
  const i = list.introspect()
  return JSON.stringify({ ...i, peers: i.peers.map((p) => ({ ...p, ejected_for_ms: 0 })) })
}

function code(c) {
  return (err) => {
    assert.ok(err instanceof Error, 'an Error')
    assert.equal(err.code, c, err.message)
    return true
  }
}

function typeErr(err) {
  assert.ok(err instanceof TypeError, `a TypeError, got ${err && err.constructor.name}: ${err && err.message}`)
  return true
}

/**
 * Resolves with the first event matching `pred` (no time limit: the test runner's applies).
 * Events from library threads never keep the process alive, so a ref'd interval does
 * while waiting.
 */
function nextEvent(list, pred) {
  const keepAlive = setInterval(() => {}, 1000)
  return new Promise((resolve) => {
    const s = list.subscribe((e) => {
      if (pred(e)) {
        s.unsubscribe()
        clearInterval(keepAlive)
        resolve(e)
      }
    })
  })
}

test('ejection options: wrong types are TypeErrors, bad values PEERLB_INVALID_ARGUMENT (checked by the core)', () => {
  for (const ejection of ['on', 1, [], () => {}]) {
    assert.throws(() => new PeerList({ ejection }), typeErr, String(ejection))
  }
  assert.throws(() => new PeerList({ ejection: { failures: '3' } }), typeErr)
  assert.throws(() => new PeerList({ ejection: { baseMs: null } }), typeErr)
  const bad = [
    { failures: 0 },
    { failures: -1 },
    { failures: 1.5 },
    { failures: NaN },
    { failures: 2 ** 32 },
    { baseMs: 1e30 },
    { baseMs: 1000, maxMs: 10 },
    { maxPercent: 101 },
    { panicPercent: 1000 },
    { fails: 3 },
    { base_ms: 3 },
    { toString: 3 },
    { constructor: 3 },
    JSON.parse('{"__proto__": 3}'),
  ]
  for (const ejection of bad) {
    assert.throws(() => new PeerList({ ejection }), code('PEERLB_INVALID_ARGUMENT'), JSON.stringify(ejection))
  }
  // Good ones, including "everything default" and off.
  for (const ejection of [undefined, null, true, false, {}, { failures: 1, baseMs: 0, maxMs: 0, maxPercent: 0, panicPercent: 0 }]) {
    new PeerList({ ejection })
  }
})

test('clock option and ManualClock.advance: bad input', () => {
  for (const clock of ['manual', 5, {}, new Date()]) {
    assert.throws(() => new PeerList({ clock }), typeErr, String(clock))
  }
  const clock = new ManualClock()
  assert.throws(() => clock.advance('1'), typeErr)
  assert.throws(() => clock.advance(), typeErr)
  assert.throws(() => clock.advance(1n), typeErr)
  for (const ms of [-1, NaN, Infinity, -Infinity]) {
    assert.throws(() => clock.advance(ms), code('PEERLB_INVALID_ARGUMENT'), String(ms))
  }
  assert.equal(clock.elapsedMs, 0)
  clock.advance(1.5)
  clock.advance(Number.MAX_VALUE) // saturates, no crash
  assert.ok(clock.elapsedMs > 1e12)
})

test('default ejection: 5 failures in a row eject for 30 s; the manual clock brings the peer back', () => {
  const clock = new ManualClock()
  const list = started(['a', 'b', 'c', 'd'], { clock })
  const events = []
  list.subscribe((e) => events.push(e))
  for (let i = 0; i < 5; i++) {
    const c = list.choose()
    assert.equal(c.peer, 'a')
    c.finish('failure')
    for (let j = 0; j < 3; j++) list.choose().finish('ok')
  }
  // The ejection event arrived before finish() returned.
  assert.deepEqual(
    events.map((e) => `${e.kind} ${e.peer}`),
    ['ejected a'],
  )
  assert.match(events[0].detail, /5 consecutive failures/)
  const info = list.introspect()
  assert.equal(info.ejected, 1)
  assert.equal(info.peers[0].ejected_for_ms, 30000)
  assert.deepEqual(list.listBackends(), info.peers)
  for (let i = 0; i < 12; i++) {
    const c = list.choose()
    assert.notEqual(c.peer, 'a')
    c.finish()
  }
  clock.advance(29999)
  assert.equal(events.length, 1)
  clock.advance(1)
  assert.deepEqual(
    events.map((e) => `${e.kind} ${e.peer}`),
    ['ejected a', 'restored a'],
  )
  assert.equal(list.introspect().ejected, 0)
})

test('admin: statuses, failures as errors or as {status: "failed"}, bad input leaves the list intact', () => {
  const list = started(['a', 'b'])
  assert.equal(list.disable('a'), 'success')
  assert.equal(list.disable('a'), 'no-action-required')
  assert.deepEqual(list.admin('enable', 'a'), { result: 1, status: 'success' })
  assert.deepEqual(list.admin('reset', 'a'), { result: 3, status: 'no-action-required' })
  const before = snapshot(list)
  for (const id of [42, null, undefined, {}, ['a'], Symbol('a')]) {
    for (const m of ['disable', 'enable', 'reset', 'delete', 'failover']) {
      assert.throws(() => list[m](id), typeErr, `${m}(${String(id)})`)
    }
    assert.throws(() => list.admin('disable', id), typeErr)
  }
  assert.throws(() => list.admin(1, 'a'), typeErr)
  for (const id of ['', 'x'.repeat(1025), 'a\0b', 'y'.repeat(1 << 20)]) {
    for (const m of ['disable', 'enable', 'reset', 'delete', 'failover']) {
      assert.throws(() => list[m](id), code('PEERLB_INVALID_ARGUMENT'), `${m}(${id.slice(0, 10)})`)
    }
  }
  assert.throws(() => list.disable('zzz'), code('PEERLB_PEER_NOT_IN_LIST'))
  const failed = list.admin('reset', 'zzz')
  assert.equal(failed.status, 'failed')
  assert.equal(failed.result, 4)
  assert.equal(failed.code, 'PEERLB_PEER_NOT_IN_LIST')
  assert.match(failed.message, /zzz/)
  assert.ok(failed.error instanceof Error)
  const unknown = list.admin('frobnicate', 'a')
  assert.equal(unknown.status, 'failed')
  assert.equal(unknown.code, 'PEERLB_INVALID_ARGUMENT')
  assert.equal(snapshot(list), before)
  assert.equal(list.delete('b'), 'success')
  assert.equal(list.introspect().total, 1)
})

test('subscribe: bad callbacks are TypeErrors; unsubscribe and Symbol.dispose stop delivery', () => {
  const list = new PeerList({ shuffle: false })
  for (const cb of [undefined, null, 1, 'f', {}]) assert.throws(() => list.subscribe(cb), typeErr)
  const got = []
  const s = list.subscribe((e) => got.push(e.kind))
  list.update({ add: ['a'] })
  assert.equal(s.unsubscribe(), true)
  assert.equal(s.unsubscribe(), false)
  list.update({ add: ['b'] })
  const d = list.subscribe((e) => got.push(`d:${e.kind}`))
  list.update({ add: ['c'] })
  if (typeof Symbol.dispose === 'symbol') d[Symbol.dispose]()
  else d.unsubscribe()
  list.update({ add: ['e'] })
  assert.deepEqual(got, ['added', 'd:added'])
})

test('a subscriber that throws (or rejects) does not crash, is reported as a warning, and the others still run', async () => {
  const warnings = []
  const onWarning = (w) => {
    if (w.code === 'PEERLB_SUBSCRIBER_THREW') warnings.push(w.message)
  }
  process.on('warning', onWarning)
  try {
    const list = new PeerList({ shuffle: false })
    const got = []
    list.subscribe(() => {
      throw new Error('boom')
    })
    list.subscribe(() => {
      // eslint-disable-next-line no-throw-literal
      throw { toString: () => { throw new Error('hostile') } }
    })
    list.subscribe(async () => {
      throw new Error('async boom')
    })
    list.subscribe((e) => got.push(`${e.kind} ${e.peer}`))
    list.update({ add: ['a', 'b'] })
    list.start()
    assert.deepEqual(got, ['added a', 'added b', 'available a', 'available b'])
    assert.equal(list.choose().peer, 'a')
    assert.equal(list.introspect().total, 2)
    // Warnings are emitted on process.nextTick; rejections a microtask later.
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    assert.ok(warnings.some((m) => m.includes('boom')), warnings.join('\n'))
    assert.ok(warnings.some((m) => m.includes('cannot be converted')), warnings.join('\n'))
    assert.ok(warnings.some((m) => m.includes('async boom')), warnings.join('\n'))
  } finally {
    process.off('warning', onWarning)
  }
})

test('a subscriber may re-enter the list: its events follow, in order, after it returns', () => {
  const clock = new ManualClock()
  const list = started(['a', 'b', 'c', 'd'], { clock, ejection: { failures: 1 } })
  const log = []
  let other
  list.subscribe((e) => {
    log.push(`${e.kind} ${e.peer}`)
    if (e.kind === 'ejected') {
      // re-entrant admin, introspect, choose and update from inside a delivery
      assert.equal(list.introspect().peers[0].ejected, true)
      assert.equal(list.reset(e.peer), 'success')
      list.choose().finish()
      list.update({ add: ['z'] })
      log.push('callback done')
    }
    if (e.kind === 'added' && e.peer === 'z') {
      // a new list (and its own events) from inside a delivery
      other = new PeerList()
      other.subscribe((o) => log.push(`other ${o.kind} ${o.peer}`))
      other.update({ add: ['q'] })
      clock.advance(1) // re-entrant advance: nothing due
    }
  })
  fail(list, 1)
  assert.deepEqual(log, ['ejected a', 'callback done', 'restored a', 'added z', 'other added q', 'available z'])
  assert.equal(list.introspect().ejected, 0)
  assert.ok(other instanceof PeerList)
})

test('events from library threads (real-clock timers) reach JS through the event loop', async () => {
  const list = started(['a', 'b'], { ejection: { failures: 1, baseMs: 20, maxPercent: 100, panicPercent: 0 } })
  const warnings = []
  const onWarning = (w) => warnings.push(w.message)
  process.on('warning', onWarning)
  const seen = []
  list.subscribe((e) => {
    if (e.kind === 'restored') throw new Error('thrown on a library-thread delivery')
  })
  list.subscribe((e) => {
    seen.push(`${e.kind} ${e.peer}`)
    // re-entering from a delivery that came through the event loop
    if (e.kind === 'restored') assert.equal(list.disable(e.peer), 'success')
  })
  const restored = nextEvent(list, (e) => e.kind === 'restored')
  // The re-entrant disable's event comes right after the callback, or (when the timer thread
  // is still finishing its delivery) through the event loop: wait for it.
  const disabled = nextEvent(list, (e) => e.kind === 'disabled')
  try {
    fail(list, 1)
    assert.deepEqual(seen, ['ejected a'])
    const e = await restored
    assert.equal(e.peer, 'a')
    await disabled
    assert.deepEqual(seen, ['ejected a', 'restored a', 'disabled a'])
    assert.equal(list.introspect().ejected, 0)
    await new Promise((r) => setImmediate(r))
    assert.ok(warnings.some((m) => m.includes('thrown on a library-thread delivery')), warnings.join('\n'))
  } finally {
    process.off('warning', onWarning)
  }
})

test('a script that subscribes with pending timers and probes exits by itself', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const list = new PeerList({ shuffle: false, transport: 'tcp-probe?interval_ms=50&timeout_ms=50',
                                ejection: { failures: 1, baseMs: 60000, maxPercent: 100 } })
    list.subscribe((e) => console.log(e.kind, e.peer))
    list.update({ add: ['127.0.0.1:1', '127.0.0.1:2'] })
    list.start()
    const plain = new PeerList({ ejection: { failures: 1, baseMs: 60000 } })
    plain.subscribe(() => {})
    plain.update({ add: ['x', 'y'] })
    plain.start()
    plain.choose().finish('failure') // a 60 s restore timer is pending
    console.log('returning', plain.introspect().ejected)
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 })
  assert.equal(r.signal, null, `killed: did not exit by itself\n${r.stdout}${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /added 127\.0\.0\.1:1/)
  assert.match(r.stdout, /returning 1/)
})

test('retry: resolves, fails over to untried peers, declines, and reports the last error as cause', async () => {
  const list = started(['a', 'b', 'c'], { ejection: false })
  assert.equal(await list.retry((peer) => `hi ${peer}`), 'hi a')
  // a plain function that throws synchronously, then an async one that resolves
  const seen = []
  const v = await list.retry(
    (peer, attempt) => {
      seen.push(peer)
      if (attempt === 1) throw new Error('sync throw')
      return Promise.resolve(attempt)
    },
    { maxAttempts: 3 },
  )
  assert.equal(v, 2)
  assert.equal(new Set(seen).size, 2)
  // non-Error throws: their String() is the attempt's message
  const odd = [undefined, 'str', 7, Symbol('sym')]
  let i = 0
  await assert.rejects(
    list.retry(() => {
      throw odd[i++]
    }, { maxAttempts: 4 }),
    (err) => {
      assert.equal(err.code, 'PEERLB_RETRY_EXHAUSTED')
      assert.equal(err.message, 'retry attempts exceeded (undefined; str; 7; Symbol(sym))')
      assert.equal(err.cause, odd[3])
      return true
    },
  )
  const busy = declined('busy')
  assert.equal(busy.code, 'PEERLB_DECLINED')
  await assert.rejects(
    list.retry(async () => {
      throw busy
    }),
    (err) => {
      assert.equal(err.code, 'PEERLB_DECLINED')
      assert.match(err.message, /declined the request: busy$/)
      assert.equal(err.cause, busy)
      return true
    },
  )
  const info = list.introspect()
  assert.equal(info.failures, 5)
  assert.equal(info.peers.reduce((n, p) => n + p.pending, 0), 0)
})

test('retry: bad input rejects with TypeError / PEERLB_INVALID_ARGUMENT and leaves the list intact', async () => {
  const list = started(['a', 'b'])
  const before = snapshot(list)
  for (const fn of [undefined, null, 1, 'f', {}]) await assert.rejects(list.retry(fn), typeErr)
  const f = () => 1
  await assert.rejects(list.retry(f, 5), typeErr)
  await assert.rejects(list.retry(f, { maxAttempts: '3' }), typeErr)
  await assert.rejects(list.retry(f, { timeoutMs: '3' }), typeErr)
  await assert.rejects(list.retry(f, { budget: {} }), typeErr)
  await assert.rejects(list.retry(f, { shardKey: 5 }), typeErr)
  for (const maxAttempts of [0, -1, 1.5, NaN, 2 ** 32]) {
    await assert.rejects(list.retry(f, { maxAttempts }), code('PEERLB_INVALID_ARGUMENT'), String(maxAttempts))
  }
  await assert.rejects(list.retry(f, { timeoutMs: -1 }), code('PEERLB_INVALID_ARGUMENT'))
  for (const o of [{ ratio: 'x' }, { minPerSec: '1' }, { ttlMs: null }, { clock: 5 }, 3]) {
    assert.throws(() => new RetryBudget(o), typeErr, JSON.stringify(o))
  }
  for (const o of [{ ratio: 2 }, { ratio: -0.1 }, { ratio: NaN }, { ttlMs: 10 }, { ttlMs: 1e9 }, { ttlMs: NaN }, { minPerSec: -1 }, { minPerSec: 0.5 }]) {
    assert.throws(() => new RetryBudget(o), code('PEERLB_INVALID_ARGUMENT'), JSON.stringify(o))
  }
  assert.equal(snapshot(list), before)
})

test('retry: a budget on the manual clock, a re-entrant attempt function, and waiting for a peer', async () => {
  const clock = new ManualClock()
  const list = started(['a', 'b', 'c'], { clock })
  const budget = new RetryBudget({ ratio: 0.5, minPerSec: 0, ttlMs: 10000, clock })
  assert.equal(budget.balance, 0)
  await assert.rejects(
    list.retry(() => {
      throw new Error('e1')
    }, { budget }),
    (err) => err.code === 'PEERLB_RETRY_EXHAUSTED' && err.message === 'retry budget exhausted (e1)',
  )
  assert.equal(budget.balance, 0)
  const second = await list.retry(
    (peer, attempt) => {
      // re-entrant use of the list from inside an attempt
      const c = list.choose()
      c.finish()
      if (attempt === 1) throw new Error('e1')
      return peer
    },
    { budget },
  )
  assert.equal(typeof second, 'string')

  // No available peer yet: the choose waits (without blocking the event loop) until one is.
  const subs = new Map()
  const waiting = new PeerList({
    shuffle: false,
    transport: { retain: (id, s) => subs.set(id, s), release() {} },
  })
  waiting.update({ add: ['p'] })
  waiting.start()
  const result = waiting.retry((peer) => `got ${peer}`, { timeoutMs: 60000 })
  setImmediate(() => subs.get('p').setStatus('available'))
  assert.equal(await result, 'got p')
  // ...and a stopped list fails at once with its own error.
  waiting.stop()
  await assert.rejects(waiting.retry(() => 1, { timeoutMs: 60000 }), code('PEERLB_NOT_STARTED'))
})

test('retry: the overall timeout is checked before each retry (PEERLB_TIMEOUT with the attempts)', async () => {
  const list = started(['a', 'b', 'c'])
  const e1 = new Error('e1')
  let calls = 0
  await assert.rejects(
    // timeoutMs 0: the first attempt may start (a peer is available at once); no retry may.
    list.retry(() => {
      calls++
      throw e1
    }, { timeoutMs: 0, maxAttempts: 5 }),
    (err) => {
      assert.equal(err.code, 'PEERLB_TIMEOUT')
      assert.match(err.message, /^retry timed out after 1 attempt in .* \(e1\)$/)
      assert.equal(err.cause, e1)
      return true
    },
  )
  assert.equal(calls, 1)
  // A list with no available peer: the first choose waits up to the timeout.
  const idle = new PeerList({ transport: { retain() {}, release() {} } })
  idle.update({ add: ['x'] })
  idle.start()
  await assert.rejects(idle.retry(() => 1, { timeoutMs: 10 }), code('PEERLB_TIMEOUT'))
})

test('a list whose subscriber refers to it is still garbage-collected; its pending timers then do nothing', () => {
  const script = `
    const { PeerList, ManualClock } = require(${JSON.stringify(pkgDir)})
    const clock = new ManualClock()
    let collected = 0
    const registry = new FinalizationRegistry(() => collected++)
    const seen = []
    ;(function () {
      for (let i = 0; i < 3; i++) {
        const list = new PeerList({ clock, ejection: { failures: 1, maxPercent: 100, panicPercent: 0 } })
        list.subscribe((e) => { seen.push(e.kind); list.introspect() })
        list.update({ add: ['a', 'b'] })
        list.start()
        list.choose().finish('failure') // a restore timer is pending on the clock
        registry.register(list, i)
      }
    })()
    ;(function wait() {
      gc()
      if (collected < 3) return setTimeout(wait, 10)
      clock.advance(60000) // the timers fire: their lists are gone
      console.log(JSON.stringify({ collected, seen }))
    })()
  `
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 30000 })
  assert.equal(r.signal, null, `lists never collected\n${r.stdout}${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.equal(out.collected, 3, r.stdout)
  assert.deepEqual(out.seen.filter((k) => k === 'ejected' || k === 'restored'), ['ejected', 'ejected', 'ejected'])
})

test('a worker terminated while library threads post it events does not crash the process', async () => {
  const { Worker } = require('node:worker_threads')
  // Every failure ejects a peer for 1 ms (real clock): restorations keep coming from the
  // library's timer threads while the worker is torn down.
  const w = new Worker(
    `const { PeerList } = require(${JSON.stringify(pkgDir)})
     const { parentPort } = require('node:worker_threads')
     const l = new PeerList({ ejection: { failures: 1, baseMs: 1, maxMs: 1, maxPercent: 100, panicPercent: 0 } })
     let n = 0
     l.subscribe((e) => { if (e.kind === 'restored' && ++n === 3) parentPort.postMessage('restoring') })
     l.update({ add: ['a', 'b', 'c'] }); l.start()
     setInterval(() => { for (let i = 0; i < 3; i++) { try { l.choose().finish('failure') } catch {} } }, 1)`,
    { eval: true },
  )
  await new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  await w.terminate()
  const list = started(['m'], { ejection: { failures: 1 } })
  const seen = []
  list.subscribe((e) => seen.push(e.kind))
  fail(list, 1)
  assert.deepEqual(seen, ['ejected'])
})
