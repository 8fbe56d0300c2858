// The `subset` / `subsetClient` list options: what the list retains, and bad input (wrong
// types, out-of-range values, one option without the other) that throws a coded error and
// leaves the list as it was.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { PeerList, deterministicSubset } = require('..')

const IDS = Array.from({ length: 12 }, (_, i) => `10.3.0.${i}:80`)
const retained = (list) => list.introspect().peers.map((p) => p.id).sort()

test('a subsetting list retains deterministicSubset of what it is offered', async () => {
  const list = new PeerList({ subset: 4, subsetClient: 7, shuffle: false })
  list.update({ add: IDS })
  assert.deepEqual(retained(list), deterministicSubset(IDS, 7, 4).sort())
  const info = list.introspect()
  assert.deepEqual(info.subset, { size: 4, client: 7, offered: 12 })
  assert.equal(info.total, 4)
  assert.deepEqual((await list.introspectAsync()).subset, info.subset)
  const gone = retained(list)[0]
  list.update({ remove: [gone] })
  const rest = IDS.filter((id) => id !== gone)
  assert.deepEqual(retained(list), deterministicSubset(rest, 7, 4).sort())
  list.start()
  const choice = list.choose({ timeoutMs: 1000 })
  assert.ok(retained(list).includes(choice.peer))
  choice.finish('ok')
  list.stop()
})

test('without subsetting introspection says null; a bigint client is accepted', () => {
  assert.equal(new PeerList().introspect().subset, null)
  assert.equal(new PeerList({ subset: 0, subsetClient: 3 }).introspect().subset, null)
  const list = new PeerList({ subset: 2, subsetClient: 2n ** 64n - 1n })
  list.update({ add: IDS })
  assert.equal(list.introspect().total, 2)
})

test('the core refuses one option without the other', () => {
  assert.throws(() => new PeerList({ subset: 4 }), { code: 'PEERLB_INVALID_ARGUMENT', message: /subset_client/ })
  assert.throws(() => new PeerList({ subsetClient: 4 }), { code: 'PEERLB_INVALID_ARGUMENT', message: /without subset/ })
})

test('bad option values: wrong types are TypeErrors, bad numbers PEERLB_INVALID_ARGUMENT', () => {
  for (const bad of [{ subset: '4' }, { subset: 4n }, { subset: {} }, { subset: 4, subsetClient: '7' }, { subset: 4, subsetClient: [7] }]) {
    assert.throws(() => new PeerList({ subsetClient: 1, ...bad }), TypeError, JSON.stringify(bad, (_, v) => String(v)))
  }
  for (const bad of [
    { subset: -1 },
    { subset: 1.5 },
    { subset: NaN },
    { subset: Infinity },
    { subset: 2 ** 53 },
    { subset: 4, subsetClient: -1 },
    { subset: 4, subsetClient: 0.5 },
    { subset: 4, subsetClient: 2 ** 53 },
    { subset: 4, subsetClient: -1n },
    { subset: 4, subsetClient: 2n ** 64n },
  ]) {
    assert.throws(() => new PeerList({ subsetClient: 1, ...bad }), { code: 'PEERLB_INVALID_ARGUMENT' }, String(bad.subset))
  }
})

test('bad updates of a subsetting list leave it intact', () => {
  const list = new PeerList({ subset: 4, subsetClient: 7 })
  list.update({ add: IDS })
  const before = list.introspect()
  const outside = IDS.find((id) => !retained(list).includes(id))
  assert.throws(() => list.update({ add: [outside] }), { code: 'PEERLB_PEER_ALREADY_IN_LIST' })
  assert.throws(() => list.update({ remove: ['nope:1'] }), { code: 'PEERLB_PEER_NOT_IN_LIST' })
  assert.throws(() => list.update({ add: [''] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => list.update({ remove: ['a'.repeat(5000)] }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => list.update({ add: [null] }), TypeError)
  assert.throws(() => list.update({ remove: [7] }), TypeError)
  assert.deepEqual(list.introspect(), before)
})
