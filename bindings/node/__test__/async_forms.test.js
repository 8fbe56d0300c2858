// The async forms of the O(peers) calls (updateAsync, startAsync, stopAsync,
// introspectAsync, Binding.startAsync): the same results and errors as the sync forms,
// their events delivered before the Promise settles, JS transports still called on the JS
// thread, and the process kept alive while one runs.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { PeerList, StaticUpdater } = require('..')

const pkgDir = path.resolve(__dirname, '..')

test('updateAsync, startAsync, stopAsync: results, events before settling, errors with codes', async () => {
  const list = new PeerList({ shuffle: false })
  const events = []
  list.subscribe((e) => events.push(`${e.kind} ${e.peer}`))
  await list.updateAsync({ add: ['a', { id: 'b', weight: 2 }] })
  assert.deepEqual(events.splice(0), ['added a', 'added b'])
  await list.startAsync()
  assert.equal(list.running, true)
  assert.deepEqual(events.splice(0), ['available a', 'available b'])
  await assert.rejects(list.startAsync(), { code: 'PEERLB_ALREADY_STARTED' })
  await assert.rejects(list.updateAsync({ add: ['a', 'c'], remove: ['zz'] }), (e) => {
    assert.equal(e.code, 'PEERLB_MULTIPLE_ERRORS')
    assert.deepEqual(e.errors.map((x) => x.code), ['PEERLB_PEER_NOT_IN_LIST', 'PEERLB_PEER_ALREADY_IN_LIST'])
    return true
  })
  assert.deepEqual(events.splice(0), ['added c', 'available c'])
  await assert.rejects(list.updateAsync({ add: [7] }), TypeError)
  await assert.rejects(list.updateAsync('a'), TypeError)
  await list.stopAsync()
  assert.equal(list.running, false)
  await assert.rejects(list.stopAsync(), { code: 'PEERLB_NOT_STARTED' })
  assert.deepEqual(list.introspect().peers.map((p) => [p.id, p.weight, p.status]), [
    ['a', 1, 'uninitialized'],
    ['b', 2, 'uninitialized'],
    ['c', 1, 'uninitialized'],
  ])
})

test('async forms call a JS transport on the JS thread, one call at a time, re-entrant', async () => {
  const calls = []
  let list
  const transport = {
    retain(id, sub) {
      calls.push(`retain ${id}`)
      sub.setStatus('available')
      if (id === 'p0') assert.equal(list.introspect().total, 50) // re-entrant, from the JS thread
    },
    release(id) {
      calls.push(`release ${id}`)
    },
  }
  list = new PeerList({ shuffle: false, transport })
  await list.updateAsync({ add: Array.from({ length: 50 }, (_, i) => `p${i}`) })
  await list.startAsync()
  assert.equal(list.introspect().available, 50)
  await list.stopAsync()
  assert.equal(calls.length, 100)
  assert.deepEqual(calls.slice(0, 2), ['retain p0', 'retain p1'])
  assert.equal(calls[50], 'release p0')
})

test('a transport that throws fails the async form like the sync one', async () => {
  const list = new PeerList({
    shuffle: false,
    transport: {
      retain(id, sub) {
        if (id === 'bad') throw new Error('no')
        sub.setStatus('available')
      },
      release() {},
    },
  })
  list.update({ add: ['ok', 'bad'] })
  await assert.rejects(list.startAsync(), (e) => e.code === 'PEERLB_TRANSPORT_FAILED' && /no/.test(e.message))
  assert.deepEqual(list.introspect().peers.map((p) => p.id), ['ok'])
})

test('introspectAsync gives what introspect gives, also for thousands of peers', async () => {
  const list = new PeerList({ shuffle: false, strategy: 'hash-ring?bounded=1.25' })
  list.update({ add: Array.from({ length: 4500 }, (_, i) => ({ id: `10.0.${i >> 8}.${i & 255}:80`, weight: 1 + (i % 3) })) })
  list.start()
  list.choose({ shardKey: 'k' }).finish('failure')
  const info = await list.introspectAsync()
  assert.deepEqual(info, list.introspect())
  assert.equal(info.peers.length, 4500)
  assert.equal(info.strategy, 'hash-ring?bounded=1.25')
  // One list (two would differ in their default names, list-N).
  const empty = new PeerList()
  assert.deepEqual(await empty.introspectAsync(), empty.introspect())
})

test('Binding.startAsync applies a static set off the JS thread', async () => {
  const list = new PeerList()
  const b = new StaticUpdater(['a:1', 'b:1']).bind(list)
  await b.startAsync()
  assert.equal(b.running, true)
  assert.equal(list.introspect().total, 2)
  await assert.rejects(b.startAsync(), { code: 'PEERLB_ALREADY_STARTED' })
  b.stop()
})

test('a pending async form keeps the process alive until it is done', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const list = new PeerList({ transport: { retain(id, s) { s.setStatus('available') }, release() {} } })
    list.update({ add: Array.from({ length: 200 }, (_, i) => 'p' + i) })
    list.startAsync().then(() => list.stopAsync()).then(() => console.log('done', list.introspect().total))
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.signal, null, r.stderr)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'done 200')
})
