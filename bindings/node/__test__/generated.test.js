// Generated bad input: every export, constructor and method called with random JS values
// from a small seeded generator — undefined, null, NaN, ±Infinity, -0, huge numbers and
// bigints, empty, over-long, NUL and lone-surrogate strings, symbols, functions that throw
// or reject, sparse and nested arrays, objects whose getters throw, proxies, class
// instances of the package itself. Every call either works (or its promise settles) or
// throws an error with a code: a PEERLB_* code of the core, or, for a wrong argument type,
// Node's TypeError with ERR_INVALID_ARG_TYPE (ERR_ILLEGAL_CONSTRUCTOR for `new` on a class
// whose objects only peerlb makes). Nothing else escapes, the process does not
// crash, and the list still adds, chooses, finishes and removes a peer afterwards.
//
// Nothing reaches the network: tcp-probe specs are never given to a list, DNS and etcd
// updaters are made and bound but never started, Upstream checks are a JS function with
// `manual: true`, and files are read only inside a temporary folder.
//
// PEERLB_GENERATED_SEED and PEERLB_GENERATED_CASES change the seed (default 1) and the
// number of calls per test (default 1500).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const peerlb = require('..')

const SEED = Number(process.env.PEERLB_GENERATED_SEED || 1)
const CASES = Number(process.env.PEERLB_GENERATED_CASES || 1500)
const CODES = new Set(Object.values(peerlb.errorCodes))
/** What `judge` refused, also where a throw would be swallowed (inside callbacks). */
const violations = []
// Subscribers that throw on purpose are process warnings; not printed here.
process.removeAllListeners('warning')

/** xorshift32: reproducible draws from SEED. */
function rng(seed) {
  let x = (seed * 2654435761) >>> 0 || 1
  const next = () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
  const int = (n) => Math.floor(next() * n)
  const pick = (items) => items[int(items.length)]
  return { next, int, pick }
}

/** An error the test's own getters, proxies and functions throw (passing it through is fine). */
function onPurpose(message) {
  const e = new Error(message)
  e.onPurpose = true
  return e
}

/** A generator of random JS values. */
function values(r) {
  const strings = [
    '', '\0', 'a\0b', 'a'.repeat(1024), 'a'.repeat(1025), 'é'.repeat(600), ':', '[::1]:80',
    '\ud800', 'a\udc00b', '😀', 'a:1', 'b:2', 'round-robin', 'hash-ring?vnodes=0',
    'maglev?table=4', 'peak-ewma?choices=all', 'always-available', 'off', 'default?failures=0',
    'ok', 'failure', 'declined', 'cancelled', 'available', 'connecting', 'unavailable', 'srv',
    'disable', 'nonsense', ' ', '__proto__', 'constructor', 'toString',
  ]
  const numbers = [
    0, -0, 1, -1, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, -(2 ** 63), 1e308, -1e308, 5e-324,
    NaN, Infinity, -Infinity, 3, 1000, 65535, 65536,
  ]
  const throwing = () => {
    throw onPurpose('thrown on purpose')
  }
  const atom = () => {
    switch (r.int(14)) {
      case 0: return undefined
      case 1: return null
      case 2: return r.next() < 0.5
      case 3: return r.pick(numbers)
      case 4: return r.int(2000) - 1000
      case 5: return r.pick([0n, -1n, 2n ** 64n, 2n ** 200n, -(2n ** 70n), 7n])
      case 6:
      case 7: return r.pick(strings)
      case 8: return Symbol('s')
      case 9: return r.pick([
        () => undefined, throwing, async () => { throw onPurpose('rejected on purpose') },
        () => 'a:1', (x) => x, function () { return this },
      ])
      case 10: return r.pick([new Uint8Array(3), new ArrayBuffer(2), new Date(NaN), new Map(), new Set([1])])
      case 11: return r.pick([new peerlb.ManualClock(), new peerlb.RetryBudget(), Promise.resolve(1)])
      case 12: {
        const o = {}
        Object.defineProperty(o, r.pick(['id', 'weight', 'add', 'strategy', 'timeoutMs', 'failures']), {
          get: throwing, enumerable: true,
        })
        return o
      }
      default: return new Proxy({}, { get: throwing, ownKeys: throwing, has: throwing })
    }
  }
  const value = (depth = 0) => {
    if (depth > 2 || r.next() < 0.6) return atom()
    switch (r.int(4)) {
      case 0: return Array.from({ length: r.int(4) }, () => value(depth + 1))
      case 1: {
        const a = []
        a[r.pick([5, 1000, 2 ** 20])] = value(depth + 1) // sparse
        return a
      }
      case 2: {
        const o = {}
        for (let i = r.int(4); i > 0; i--) {
          o[r.pick(['id', 'weight', 'add', 'remove', 'strategy', 'timeoutMs', 'shardKey', 'x',
            'ejection', 'failures', 'baseMs', 'maxAttempts', 'record', 'nameserver', 'port',
            'pollIntervalMs', 'backends', 'manual', 'seed', 'shuffle', 'failFast', 'clock'])] = value(depth + 1)
        }
        return o
      }
      default: return Object.create(null)
    }
  }
  return value
}

/** Runs a call: 'ok', 'type' or 'peerlb'; anything else thrown fails the test. */
function outcome(what, f) {
  let result
  try {
    result = f()
  } catch (e) {
    return judge(what, e)
  }
  if (result && typeof result.then === 'function') {
    return result.then(() => 'ok', (e) => judge(what, e))
  }
  return 'ok'
}

function judge(what, e) {
  const refuse = (message) => {
    violations.push(message)
    assert.fail(message)
  }
  if (!(e instanceof Error)) refuse(`${what} threw a non-Error: ${String(e)}`)
  if (e instanceof TypeError && (e.code === 'ERR_INVALID_ARG_TYPE' || e.code === 'ERR_ILLEGAL_CONSTRUCTOR')) {
    return 'type'
  }
  if (!CODES.has(e.code)) {
    refuse(`${what} threw ${e.constructor.name} with code ${String(e.code)}: ${e.message}`)
  }
  for (const inner of e.errors || []) {
    if (!CODES.has(inner.code)) refuse(`${what}: an inner error with code ${String(inner.code)}`)
  }
  return 'peerlb'
}

test.afterEach(() => {
  assert.deepEqual(violations.splice(0), [], 'calls made inside callbacks threw uncoded errors')
})

let probes = 0

/** The list still works: a fresh peer is added, chosen, finished and removed. */
function assertUsable(list) {
  const peer = `probe-${probes++}:1`
  if (!list.running) list.start()
  list.update({ add: [peer] })
  for (let i = 0; i <= list.introspect().total; i++) {
    const c = list.choose({ timeoutMs: 2000 })
    c.finish()
    if (c.peer === peer) break
  }
  assert.ok(list.introspect().peers.some((p) => p.id === peer))
  list.update({ remove: [peer] })
  assert.ok(!list.introspect().peers.some((p) => p.id === peer))
}

function runningList(options) {
  const list = new peerlb.PeerList({ shuffle: false, ...options })
  list.update({ add: ['a:1', 'b:2', 'c:3'] })
  list.start()
  return list
}

const noProbe = (v) => (typeof v === 'string' && v.startsWith('tcp-probe') ? undefined : v)

test('constructors and functions of the package', async () => {
  const r = rng(SEED)
  const value = values(r)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-generated-'))
  const list = runningList()
  try {
    for (let i = 0; i < CASES; i++) {
      const a = () => value()
      const opts = () => {
        const o = value()
        if (o && typeof o === 'object' && !Array.isArray(o) && !(o instanceof Promise)) {
          try {
            if ('transport' in o) o.transport = noProbe(o.transport)
          } catch {}
        }
        return o
      }
      const which = r.int(12)
      switch (which) {
        case 0: {
          const kind = await outcome('new PeerList', () => new peerlb.PeerList(opts()))
          const strategy = a()
          await outcome('new PeerList({strategy})', () => new peerlb.PeerList({ strategy, transport: noProbe(a()), ejection: a(), seed: a() }))
          void kind
          break
        }
        case 1: await outcome('new ManualClock().advance', () => new peerlb.ManualClock().advance(a())); break
        case 2: await outcome('new RetryBudget', () => new peerlb.RetryBudget(opts())); break
        case 3: await outcome('declined', () => peerlb.declined(a(), a())); break
        case 4: {
          let b
          const k = await outcome('new StaticUpdater', () => { b = new peerlb.StaticUpdater(a()).bind(list) })
          if (k === 'ok') {
            await outcome('static start', () => b.start())
            await outcome('static stop', () => b.stop())
          }
          break
        }
        case 5: {
          // Only paths inside the temporary folder are read.
          const file = path.join(tmp, `peers-${i}.txt`)
          fs.writeFileSync(file, String(r.pick(['a:1\n', 'bad line\n', '', 'x:1 0\n', '\ud800:1\n'])))
          let b
          const k = await outcome('FileUpdater', () => { b = new peerlb.FileUpdater(file, opts()).bind(list) })
          if (k === 'ok') {
            await outcome('file start', () => b.start())
            void b.lastError
            await outcome('file stop', () => b.stop())
          }
          await outcome('FileUpdater(any path)', () => new peerlb.FileUpdater(a(), opts()))
          break
        }
        case 6:
          // Made and bound, never started: no query leaves the process.
          await outcome('DnsUpdater', () => new peerlb.DnsUpdater(a(), opts()).bind(list))
          break
        case 7:
          await outcome('EtcdUpdater', () => new peerlb.EtcdUpdater(a(), a(), opts()))
          break
        case 8: {
          let up
          const o = opts()
          let options = {}
          try {
            // The test's own copy: a getter or proxy that throws here is not the call's.
            if (o && typeof o === 'object' && !Array.isArray(o)) options = { ...o }
          } catch {}
          const k = await outcome('new Upstream', () => {
            up = new peerlb.Upstream({ ...options, manual: true, check: () => true })
          })
          if (k === 'ok') {
            for (const m of ['pick', 'up', 'down', 'score', 'reconcile', 'scores', 'checkNow']) {
              await outcome(`Upstream.${m}`, () => up[m](a()))
            }
            up.shutdown()
          }
          break
        }
        case 9: await outcome('Subscriber', () => new peerlb.Subscriber(a())); break
        case 10: await outcome('new Choice', () => new peerlb.Choice(a(), a(), a())); break
        default: await outcome('new Binding', () => new peerlb.Binding(a())); break
      }
    }
    assertUsable(list)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
    list.stop()
  }
})

test("a list's methods", async () => {
  const r = rng(SEED + 1)
  const value = values(r)
  const methods = [
    'update', 'updateAsync', 'start', 'stop', 'choose', 'chooseAsync', 'introspect',
    'listBackends', 'disable', 'enable', 'reset', 'delete', 'failover', 'admin', 'subscribe',
    'retry', 'openSession', 'openSessionAsync', 'backendConfig', 'addBackend', 'available',
    'uninitialized', 'numAvailable', 'numUnavailable', 'numUninitialized', 'peers',
  ]
  let list = runningList({ clock: new peerlb.ManualClock() })
  for (let i = 0; i < CASES; i++) {
    if (i % 100 === 0) {
      assertUsable(list)
      list = runningList({ strategy: r.pick(peerlb.strategies), clock: new peerlb.ManualClock() })
    }
    const m = r.pick(methods)
    if (typeof list[m] !== 'function') continue
    const args = Array.from({ length: r.int(3) }, () => value())
    if (m === 'choose' || m === 'chooseAsync' || m === 'openSession' || m === 'openSessionAsync' || m === 'retry') {
      // A fresh peer is there, so a wait ends at once whatever the timeout (the
      // timeout's conversion is what is tested); retries of a function that always fails
      // are bounded by maxAttempts below.
      list.update({ add: [`fresh-${i}:1`] })
    }
    if (m === 'retry') {
      const fn = typeof args[0] === 'function' ? args[0] : (peer) => peer
      let o = args[1]
      try {
        if (o && typeof o === 'object' && !Array.isArray(o)) {
          o = { ...o }
          if (typeof o.maxAttempts === 'number' && o.maxAttempts > 5) o.maxAttempts = 5
          if (typeof o.timeoutMs === 'number' && o.timeoutMs > 200) o.timeoutMs = 200
        }
      } catch {
        // Its getters throw: retry will meet them the same way.
      }
      await outcome('retry', () => list.retry(fn, o))
      continue
    }
    let got
    const kind = await outcome(m, () => {
      got = list[m](...args)
      return got && typeof got.then === 'function' ? got.then((v) => { got = v }) : got
    })
    if (kind === 'ok' && got) {
      if (m === 'choose' || m === 'chooseAsync') await outcome('finish', () => got.finish(value(), value()))
      if (m === 'subscribe') got.unsubscribe()
      if (m === 'openSession' || m === 'openSessionAsync') got.close()
    }
  }
  assertUsable(list)
})

test('choices finished with anything, and twice', async () => {
  const r = rng(SEED + 2)
  const value = values(r)
  const list = runningList()
  for (let i = 0; i < CASES; i++) {
    const c = list.choose({ timeoutMs: 0 })
    const k = await outcome('finish', () => c.finish(value(), value()))
    if (k !== 'ok') c.finish()
    assert.equal(await outcome('finish again', () => c.finish()), 'peerlb')
  }
  assert.equal(list.introspect().peers.reduce((n, p) => n + p.pending, 0), 0)
  assertUsable(list)
})

test('transports and subscribers that misbehave', async () => {
  const r = rng(SEED + 3)
  const value = values(r)
  for (let i = 0; i < Math.ceil(CASES / 10); i++) {
    const behaviour = Array.from({ length: 1 + r.int(4) }, () => r.pick(['throw', 'status', 'reenter', 'available', 'nothing']))
    let calls = 0
    let list = null
    const act = (sub) => {
      const what = behaviour[calls++ % behaviour.length]
      if (what === 'throw') throw new Error('transport fails on purpose')
      if (what === 'status') outcome('setStatus', () => sub.setStatus(value()))
      if (what === 'reenter' && list && calls < 8) {
        outcome('reenter introspect', () => list.introspect())
        outcome('reenter update', () => list.update({ add: [`reentered-${calls}:1`] }))
      }
      if (what === 'available') sub.setStatus('available')
      return value()
    }
    list = new peerlb.PeerList({ shuffle: false, transport: { retain: (p, s) => act(s), release: (p, s) => act(s) } })
    const sub = list.subscribe(r.pick([() => { throw new Error('on purpose') }, () => list.introspect(), (e) => e.peer]))
    await outcome('update', () => list.update({ add: [value(), 't:1'] }))
    await outcome('start', () => list.start())
    await outcome('choose', () => list.choose({ timeoutMs: 0 }))
    await outcome('stop', () => list.stop())
    sub.unsubscribe()
    behaviour.splice(0, behaviour.length, 'available')
    list.introspect()
    assertUsable(list)
    list.stop()
  }
})
