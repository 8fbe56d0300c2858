// Hostile input: sparse arrays with huge lengths, Array subclasses, proxies, getters that
// change type or throw. Each case must end quickly with a TypeError or
// PEERLB_INVALID_ARGUMENT and leave the list intact. The cases that once hung or aborted
// the process run in a child process, so that a regression fails the test instead of
// killing the test run.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const peerlb_ = require('..')
const { PeerList, StaticUpdater, EtcdUpdater, Upstream } = peerlb_

const pkgDir = path.resolve(__dirname, '..')

/** Runs `body` (which prints one JSON line) in a child process; fails on a crash or hang. */
function child(body) {
  const r = spawnSync(process.execPath, ['-e', `const peerlb = require(${JSON.stringify(pkgDir)});\n${body}`], {
    encoding: 'utf8',
    timeout: 60000,
  })
  assert.equal(r.signal, null, `the child was killed (hang or abort): ${r.signal}\n${r.stderr.slice(0, 2000)}`)
  assert.equal(r.status, 0, `the child failed:\n${r.stderr.slice(0, 2000)}`)
  return JSON.parse(r.stdout)
}

/** `[constructor name, code]` of what `f` throws, or 'ok'. */
const outcomeOf = `function outcomeOf(f) {
  try { f(); return 'ok' } catch (e) { return [e.constructor.name, e.code] }
}`

test('huge sparse arrays and Array subclasses are refused at once, never walked or pre-sized', () => {
  const out = child(`${outcomeOf}
    const huge = () => { const a = []; a.length = 2 ** 32 - 1; return a }
    const holes30 = () => { const a = ['x']; a.length = 2 ** 30; return a }
    class Big extends Array {}
    const bigSub = () => { const a = new Big(); a.length = 2 ** 32 - 1; return a }
    const list = new peerlb.PeerList()
    list.update({ add: ['keep'] })
    const cases = {
      updateAdd: () => list.update({ add: huge() }),
      updateRemove: () => list.update({ remove: huge() }),
      updateSubclass: () => list.update({ add: bigSub() }),
      staticHuge: () => new peerlb.StaticUpdater(huge()),
      staticHoles: () => new peerlb.StaticUpdater(holes30()),
      etcdHoles: () => new peerlb.EtcdUpdater(holes30(), '/p/'),
      etcdHuge: () => new peerlb.EtcdUpdater(huge(), '/p/'),
      upstreamSubclass: () => new peerlb.Upstream({ backends: bigSub(), manual: true }),
      reconcileHuge: () => new peerlb.Upstream({ manual: true }).reconcile(huge()),
    }
    const got = {}
    for (const [k, f] of Object.entries(cases)) got[k] = outcomeOf(f)
    list.updateAsync({ add: holes30() }).then(
      () => console.log('{}'),
      (e) => {
        got.updateAsync = [e.constructor.name, e.code]
        got.total = list.introspect().total
        console.log(JSON.stringify(got))
      },
    )
  `)
  const invalid = ['Error', 'PEERLB_INVALID_ARGUMENT']
  for (const k of ['updateAdd', 'updateRemove', 'updateSubclass', 'updateAsync', 'staticHuge', 'staticHoles', 'etcdHoles', 'etcdHuge', 'upstreamSubclass', 'reconcileHuge']) {
    assert.deepEqual(out[k], invalid, k)
  }
  assert.equal(out.total, 1)
})

test('a hole stops the walk with a TypeError; nothing is applied', () => {
  const list = new PeerList({ shuffle: false })
  const sparse = ['a', 'b']
  sparse.length = 100000
  assert.throws(() => list.update({ add: sparse }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && /item 2/.test(e.message))
  // eslint-disable-next-line no-sparse-arrays
  assert.throws(() => list.update({ remove: ['a', , 'b'] }), TypeError)
  assert.throws(() => new StaticUpdater(sparse), TypeError)
  assert.throws(() => new EtcdUpdater(['http://127.0.0.1:1', undefined], '/p/'), TypeError)
  assert.throws(() => new Upstream({ backends: sparse, manual: true }), TypeError)
  assert.equal(list.introspect().total, 0)
})

test('proxies and array-likes are not arrays', () => {
  const list = new PeerList()
  const proxy = new Proxy(['a'], {})
  const arrayLike = { length: 2 ** 32 - 1, 0: 'a' }
  assert.throws(() => list.update({ add: proxy }), TypeError)
  assert.throws(() => list.update({ add: arrayLike }), TypeError)
  assert.throws(() => new StaticUpdater(arrayLike), TypeError)
  assert.equal(list.introspect().total, 0)
})

test('each value is read once: a getter that changes type cannot slip through', () => {
  const list = new PeerList({ shuffle: false })
  let reads = 0
  const sly = {
    get id() {
      reads++
      return reads === 1 ? 'sly' : 42
    },
  }
  list.update({ add: [sly] })
  assert.equal(reads, 1)
  assert.deepEqual(list.introspect().peers.map((p) => p.id), ['sly'])
  let weightReads = 0
  const w = {
    id: 'w',
    get weight() {
      weightReads++
      return weightReads === 1 ? 2 : 'heavy'
    },
  }
  list.update({ add: [w] })
  assert.equal(weightReads, 1)
  assert.equal(list.introspect().peers[1].weight, 2)
  let optionReads = 0
  const opts = {
    get strategy() {
      optionReads++
      return optionReads === 1 ? 'random' : 7
    },
  }
  assert.equal(new PeerList(opts).strategy, 'random')
  assert.equal(optionReads, 1)
})

test('getters that throw are PEERLB_INVALID_ARGUMENT with the thrown value as cause; the list is intact', () => {
  const list = new PeerList({ shuffle: false })
  list.update({ add: ['keep'] })
  const boom = new Error('boom')
  const thrower = {
    get id() {
      throw boom
    },
  }
  const check = (f, what) =>
    assert.throws(f, (e) => {
      assert.equal(e.code, 'PEERLB_INVALID_ARGUMENT', `${what}: ${e.message}`)
      assert.equal(e.cause, boom, what)
      assert.match(e.message, /boom/)
      return true
    })
  check(() => list.update({ add: ['x', thrower] }), 'an item')
  check(
    () =>
      list.update({
        get add() {
          throw boom
        },
      }),
    'an option',
  )
  const items = ['y']
  Object.defineProperty(items, 1, {
    get() {
      throw boom
    },
    enumerable: true,
  })
  check(() => list.update({ add: items }), 'an element getter')
  check(
    () =>
      new PeerList({
        get strategy() {
          throw boom
        },
      }),
    'a list option',
  )
  check(
    () =>
      new PeerList({
        ejection: {
          get failures() {
            throw boom
          },
        },
      }),
    'an ejection option',
  )
  check(
    () =>
      new PeerList({
        transport: {
          retain() {},
          get release() {
            throw boom
          },
        },
      }),
    'a transport method',
  )
  assert.deepEqual(list.introspect().peers.map((p) => p.id), ['keep'])
})

test('too many items and bad weights are PEERLB_INVALID_ARGUMENT', () => {
  const list = new PeerList()
  const tooMany = new Array(2 ** 20 + 1).fill('x')
  assert.throws(() => list.update({ add: tooMany }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => list.update({ add: [{ id: 'w', weight: 2 ** 32 }] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => list.update({ add: [{ id: 'w', weight: -1 }] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => list.update({ add: [{ id: 'w', weight: 0 }] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.equal(list.introspect().total, 0)
})

test('zones and priorities: wrong types are TypeErrors, bad values PEERLB_INVALID_ARGUMENT; the list is intact', () => {
  const list = new PeerList({ shuffle: false, localZone: 'a' })
  list.update({ add: [{ id: 'a:1', zone: 'a' }, { id: 'b:1', zone: 'b', priority: 1, weight: 2 }, { id: 'c:1', zone: null }] })
  const peers = list.introspect().peers.map((p) => [p.id, p.zone, p.priority, p.weight])
  assert.deepEqual(peers, [['a:1', 'a', 0, 1], ['b:1', 'b', 1, 2], ['c:1', null, 0, 1]])
  list.start()
  assert.deepEqual(
    list.introspect().priorities.map((l) => [l.priority, l.load, l.healthy]),
    [[0, 100, 2], [1, 0, 1]],
  )
  for (const bad of [{ id: 'x:1', zone: 3 }, { id: 'x:1', zone: {} }, { id: 'x:1', priority: '1' }, { id: 'x:1', priority: 1n }]) {
    assert.throws(() => list.update({ add: ['y:1', bad] }), TypeError)
  }
  for (const bad of [{ id: 'x:1', priority: -1 }, { id: 'x:1', priority: 0.5 }, { id: 'x:1', priority: 2 ** 32 }]) {
    assert.throws(() => list.update({ add: ['y:1', bad] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  }
  const throwing = { id: 'x:1', get zone() { throw new Error('boom') } }
  assert.throws(() => list.update({ add: [throwing] }))
  // Zones the core refuses fail that peer only.
  assert.throws(() => list.update({ add: [{ id: 'd:1', zone: 'z'.repeat(1025) }, { id: 'e:1', zone: 'a\0b' }, 'f:1'] }), {
    code: 'PEERLB_INVALID_ARGUMENT',
  })
  assert.deepEqual(list.introspect().peers.map((p) => p.id), ['a:1', 'b:1', 'c:1', 'f:1'])
  assert.throws(() => new PeerList({ localZone: 3 }), TypeError)
  assert.throws(() => new PeerList({ localZone: 'a\0' }), { code: 'PEERLB_INVALID_ARGUMENT' })
  for (const f of [0.5, NaN, Infinity, 101]) {
    assert.throws(() => new PeerList({ overprovisioningFactor: f }), { code: 'PEERLB_INVALID_ARGUMENT' })
  }
  assert.throws(() => new PeerList({ overprovisioningFactor: '1.4' }), TypeError)
  assert.throws(() => new PeerList({ minClusterSize: -1 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new PeerList({ minClusterSize: 1.5 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  new PeerList({ localZone: '', minClusterSize: 0, overprovisioningFactor: 1 })
})

test('deterministicSubset: balanced, deterministic, and strict about its arguments', () => {
  const { deterministicSubset } = require('..')
  const backends = Array.from({ length: 300 }, (_, i) => `10.0.0.${i}:80`)
  const perBackend = new Map(backends.map((b) => [b, 0]))
  for (let client = 0; client < 1000; client++) {
    const mine = deterministicSubset(backends, client, 30)
    assert.equal(new Set(mine).size, 30)
    for (const b of mine) perBackend.set(b, perBackend.get(b) + 1)
  }
  assert.deepEqual([...new Set(perBackend.values())], [100])
  assert.deepEqual(deterministicSubset([...backends].reverse(), 5, 30), deterministicSubset(backends, 5, 30))
  assert.throws(() => deterministicSubset([1], 0, 1), TypeError)
  assert.throws(() => deterministicSubset('ab', 0, 1), TypeError)
  assert.throws(() => deterministicSubset(backends, -1, 1), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => deterministicSubset(backends, 0, 1.5), { code: 'PEERLB_INVALID_ARGUMENT' })
  const sparse = []
  sparse.length = 2 ** 32 - 1
  assert.throws(() => deterministicSubset(sparse, 0, 1))
})

test('classes whose objects peerlb makes cannot be made with new (a coded TypeError), and instanceof still works', () => {
  for (const name of ['Choice', 'Session', 'Subscriber', 'Binding']) {
    assert.throws(
      () => new peerlb_[name](),
      (e) => e instanceof TypeError && e.code === 'ERR_ILLEGAL_CONSTRUCTOR',
      name,
    )
  }
  const list = new PeerList()
  list.update({ add: ['a:1'] })
  list.start()
  const choice = list.choose()
  assert.ok(choice instanceof peerlb_.Choice)
  choice.finish()
  // A hand-made Choice used to fail later, on its missing list, with an uncoded TypeError.
  assert.throws(() => new peerlb_.Choice(null, 1, 'x'), { code: 'ERR_ILLEGAL_CONSTRUCTOR' })
})

test('addBackend with data that has no JSON (a BigInt, a cycle) is a coded TypeError', () => {
  const list = new PeerList()
  const cyclic = { id: 'a:1' }
  cyclic.self = cyclic
  for (const data of [{ id: 'a:1', weight: 2n }, cyclic]) {
    assert.throws(() => list.addBackend(data), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE')
  }
  assert.equal(list.introspect().total, 0)
})

test('an object where a string or number is wanted is refused without running its code', () => {
  let traps = 0
  const proxy = new Proxy({}, { get: () => { traps++; return () => 'a:1' } })
  const toStringCalls = { toString() { traps++; return 'a:1' } }
  const list = new PeerList()
  list.update({ add: ['a:1'] })
  for (const v of [proxy, toStringCalls, new Array(2 ** 20)]) {
    for (const call of [() => list.backendConfig(v), () => new peerlb_.ManualClock().advance(v)]) {
      assert.throws(call, (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE')
    }
  }
  assert.equal(traps, 0, 'a proxy trap or toString ran while the argument was refused')
  assert.equal(list.introspect().total, 1)
})

test('declined(message, options) with a remoteCode getter that throws is PEERLB_INVALID_ARGUMENT', () => {
  const thrown = new Error('on purpose')
  const options = Object.defineProperty({}, 'remoteCode', { get() { throw thrown } })
  assert.throws(
    () => peerlb_.declined('busy', options),
    (e) => e.code === 'PEERLB_INVALID_ARGUMENT' && e.cause === thrown,
  )
  assert.equal(peerlb_.declined('busy', { remoteCode: 429 }).remoteCode, 429)
})

test('options read by the JS layer (choose, addBackend data, Upstream check) that throw are PEERLB_INVALID_ARGUMENT', async () => {
  const thrown = new Error('on purpose')
  const throwing = (key) => Object.defineProperty({}, key, { get() { throw thrown }, enumerable: true })
  const list = new PeerList()
  list.update({ add: ['a:1'] })
  list.start()
  const coded = (e) => e.code === 'PEERLB_INVALID_ARGUMENT' && e.cause === thrown
  assert.throws(() => list.choose(throwing('timeoutMs')), coded)
  assert.throws(() => list.choose(throwing('shardKey')), coded)
  await assert.rejects(list.chooseAsync(throwing('timeoutMs')), coded)
  assert.throws(() => list.addBackend({ id: 'b:1', toJSON() { throw thrown } }), coded)
  assert.throws(() => new Upstream(throwing('check')), coded)
  assert.equal(list.introspect().total, 1)
  list.choose().finish()
  assert.equal(list.introspect().peers[0].pending, 0)
  list.stop()
})
