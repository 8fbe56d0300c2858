// Choices: finishing exactly once (a second finish, or a stale copy, is
// PEERLB_ALREADY_FINISHED and changes nothing), the release alias, and choices that are
// garbage-collected unfinished (cancelled by a finalizer; run with --expose-gc in a child).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { PeerList, Choice, _native } = require('..')

const pkgDir = path.resolve(__dirname, '..')

function started(peers, opts = {}) {
  const list = new PeerList({ shuffle: false, ...opts })
  list.update({ add: peers })
  list.start()
  return list
}

const pending = (list) => list.introspect().peers.map((p) => p.pending)
const already = { code: 'PEERLB_ALREADY_FINISHED' }

/** A copy of a Choice object, as careless code might make one. */
const copyOf = (c) => Object.assign(Object.create(Choice.prototype), c)

test('finishing twice throws PEERLB_ALREADY_FINISHED and changes nothing', () => {
  const list = started(['a'])
  const c = list.choose()
  assert.equal(c.finish('failure', 3), true)
  assert.equal(c.finished, true)
  const before = JSON.stringify(list.introspect())
  for (const again of [() => c.finish(), () => c.finish('failure'), () => c.cancel(), () => c.release()]) {
    assert.throws(again, (e) => e instanceof Error && e.code === 'PEERLB_ALREADY_FINISHED' && /"a"/.test(e.message))
  }
  assert.equal(JSON.stringify(list.introspect()), before)
  if (typeof Symbol.dispose === 'symbol') c[Symbol.dispose]() // a finished choice: nothing to do
})

test('a stale copy of a Choice never finishes the request that now holds its slot', () => {
  const list = started(['a', 'b'], { strategy: 'fewest-pending', ejection: { failures: 1 } })
  const first = list.choose()
  const stale = copyOf(first)
  first.finish()
  // The next choice reuses the slot the first one had.
  const owner = list.choose()
  assert.throws(() => stale.finish('failure'), already)
  assert.deepEqual(pending(list), owner.peer === 'a' ? [1, 0] : [0, 1])
  assert.equal(list.introspect().failures, 0, 'the owner request was not failed by the copy')
  assert.equal(owner.finish(), true)
  assert.deepEqual(pending(list), [0, 0])
  assert.equal(list.introspect().ejected, 0)
})

test('when a copy finishes first, the original throws and counts as finished', () => {
  const list = started(['a'])
  const c = list.choose()
  const copy = copyOf(c)
  assert.equal(copy.finish('ok'), true)
  assert.throws(() => c.finish('failure'), already)
  assert.equal(c.finished, true)
  assert.deepEqual(pending(list), [0])
  assert.equal(list.introspect().failures, 0)
})

test('release() is cancel(); wrong outcome and latency types leave the choice unfinished', () => {
  const list = started(['a'])
  const c = list.choose()
  assert.throws(() => c.finish(3), TypeError)
  assert.throws(() => c.finish('meh'), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => c.finish('ok', 'slow'), TypeError)
  assert.throws(() => c.finish('ok', -1), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => c.finish('ok', NaN), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.equal(c.finished, false)
  assert.deepEqual(pending(list), [1])
  assert.equal(c.release(), true)
  assert.deepEqual(pending(list), [0])
  assert.throws(() => c.cancel(), already)
})

test('a panic caught at the boundary is PEERLB_INTERNAL', () => {
  assert.throws(() => _native.internalErrorForTest(), (e) => e.code === 'PEERLB_INTERNAL' && /a panic the test asked for/.test(e.message))
})

function runGc(script) {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.signal, null, `killed\n${r.stdout}${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('choices garbage-collected unfinished are cancelled; finished and live ones are left alone', () => {
  const out = runGc(`
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const list = new PeerList({ strategy: 'fewest-pending', shuffle: false })
    list.update({ add: ['a', 'b'] })
    list.start()
    const pending = () => list.introspect().peers.map((p) => p.pending)
    const settle = () => new Promise((r) => setImmediate(r))
    async function collect(want) {
      const deadline = Date.now() + 20000
      while (Date.now() < deadline) {
        gc()
        await settle()
        if (JSON.stringify(pending()) === JSON.stringify(want)) return true
      }
      return false
    }
    ;(async () => {
      const result = {}
      // Dropped within the turn that made them.
      ;(function () { for (let i = 0; i < 1000; i++) list.choose() })()
      result.droppedAtOnce = [pending(), await collect([0, 0])]
      // Kept across turns (registered with the finalizer), then dropped.
      let kept = []
      for (let i = 0; i < 1000; i++) kept.push(list.choose())
      await settle()
      kept = null
      result.droppedLater = [pending(), await collect([0, 0])]
      // Finished after a turn: the finalizer must not touch the slot (now reused).
      let finished = []
      for (let i = 0; i < 100; i++) finished.push(list.choose())
      await settle()
      for (const c of finished) c.finish()
      finished = null
      const live = list.choose()
      await settle()
      result.live = [await collect(live.peer === 'a' ? [1, 0] : [0, 1]), pending()]
      live.finish()
      result.end = pending()
      console.log(JSON.stringify(result))
    })()
  `)
  assert.deepEqual(out.droppedAtOnce, [[500, 500], true])
  assert.deepEqual(out.droppedLater, [[500, 500], true])
  assert.equal(out.live[0], true, `the live choice stayed pending: ${out.live[1]}`)
  assert.deepEqual(out.end, [0, 0])
})

test('finish takes a load report (ORCA text or fields); a bad one throws and leaves the choice pending', () => {
  const list = new PeerList({ strategy: 'weighted-round-robin:orca', shuffle: false })
  list.update({ add: ['a:1'] })
  list.start()
  for (const load of [
    undefined,
    'TEXT cpu_utilization=0.5, rps_fractional=10',
    { utilization: 0.5, qps: 10, eps: 0, requestsInFlight: 2 },
    {},
  ]) {
    const c = list.choose()
    assert.equal(c.finish('ok', 5, load), true)
  }
  for (const [load, code] of [
    ['TEXT eps=nan', 'PEERLB_INVALID_ARGUMENT'],
    [{ qps: -1 }, 'PEERLB_INVALID_ARGUMENT'],
    [{ requestsInFlight: 1.5 }, 'PEERLB_INVALID_ARGUMENT'],
    [{ qps: Number.POSITIVE_INFINITY }, 'PEERLB_INVALID_ARGUMENT'],
    ['JSON {}', 'PEERLB_INVALID_ARGUMENT'],
    [{ colour: 1 }, undefined],
    [{ qps: 'fast' }, undefined],
    [42, undefined],
  ]) {
    const c = list.choose()
    assert.throws(
      () => c.finish('ok', 5, load),
      (e) => (code ? e.code === code : e instanceof TypeError),
      JSON.stringify(load),
    )
    assert.equal(c.finished, false)
    assert.equal(c.finish(), true)
  }
  assert.equal(list.introspect().peers[0].pending, 0)
  list.stop()
})

test("the hot path's raw calls refuse wrong arguments without touching the list", () => {
  const list = started(['a'])
  const c = list.choose()
  for (const [id, token] of [[undefined, undefined], ['x', {}], [list._id, -1], [list._id, 1.5], [list._id, 2 ** 60], [2 ** 31, c._token], [null, c._token]]) {
    assert.equal(_native.finish0(id, token), false, `finish0(${String(id)}, ${String(token)})`)
  }
  assert.deepEqual(pending(list), [1])
  for (const id of [undefined, 'x', {}, -1, 2 ** 31]) {
    assert.throws(() => _native.choose0(id), (e) => e.code === 'PEERLB_INVALID_ARGUMENT' && /no peer list/.test(e.message))
  }
  assert.equal(c.finish(), true)
  assert.deepEqual(pending(list), [0])
  const stopped = new PeerList({ shuffle: false })
  stopped.update({ add: ['a'] })
  assert.throws(() => stopped.choose(), { code: 'PEERLB_NOT_STARTED' })
})
