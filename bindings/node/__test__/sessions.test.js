// Sessions, the session listener, the backend administrator's data calls and yarpc's
// queries on the Node surface, beyond the shared scenarios: the async forms (the event loop
// keeps running while they wait), `using`, garbage collection closing a session, listeners
// that throw or re-enter, remote codes on errors, and bad input.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { PeerList, Session, AdminResult, adminResultCodes, declined } = require('..')

const pkgDir = path.resolve(__dirname, '..')

function started(peers, opts = {}) {
  const list = new PeerList({ shuffle: false, ...opts })
  list.update({ add: peers })
  list.start()
  return list
}

const pending = (list, id) => list.listBackends().find((p) => p.id === id).pending
const typeErr = (err) => err instanceof TypeError
const code = (c) => (err) => err instanceof Error && err.code === c

test('a session counts as pending, fails over with the same id, and closes', () => {
  const list = started(['a', 'b'], { strategy: 'fewest-pending' })
  const heard = []
  list.subscribeSessions((e) => heard.push(`${e.kind} ${e.session} ${e.peer} ${e.reason}`))
  const s = list.openSession()
  assert.ok(s instanceof Session)
  assert.equal(s.id, 1)
  assert.equal(s.peer, 'a')
  assert.equal(pending(list, 'a'), 1)
  assert.equal(s.failover('reset', { remoteCode: 1006 }), 'b')
  assert.equal(s.failovers, 1)
  assert.equal(list.introspect().sessions, 1)
  s.close()
  assert.equal(s.closed, true)
  assert.equal(s.bound, false)
  assert.throws(() => s.close(), code('PEERLB_ALREADY_FINISHED'))
  assert.deepEqual(heard, ['created 1 a opened', 'terminated 1 a reset', 'created 1 b failover', 'terminated 1 b closed'])
})

test('the async forms wait without blocking the event loop', async () => {
  const list = started(['a'])
  const s = await list.openSessionAsync({ timeoutMs: 1000 })
  assert.equal(s.peer, 'a')
  const heard = []
  list.subscribeSessions((e) => heard.push(e.kind))
  let ticks = 0
  const ticker = setInterval(() => ticks++, 1)
  setTimeout(() => list.update({ add: ['b'] }), 50)
  const peer = await s.failoverAsync('gone', { timeoutMs: 10000 })
  clearInterval(ticker)
  assert.equal(peer, 'b')
  assert.ok(ticks > 5, `the event loop ran while the failover waited (${ticks} ticks)`)
  // Events the work caused were delivered before its Promise settled.
  assert.deepEqual(heard, ['terminated', 'created'])
  list.update({ remove: ['a'] })
  await assert.rejects(s.failoverAsync('no other', { timeoutMs: 20, remoteCode: 1011 }), (e) => {
    return e.code === 'PEERLB_TIMEOUT' && e.peer === 'b' && e.remoteCode === 1011
  })
  assert.equal(s.bound, false)
  assert.equal(s.closed, false)
  const empty = started([])
  await assert.rejects(empty.openSessionAsync(), code('PEERLB_NO_DEADLINE'))
  await assert.rejects(empty.openSessionAsync({ timeoutMs: 10 }), code('PEERLB_TIMEOUT'))
  s.close()
})

test('decline returns the error with the peer and the remote code, and ends the session', () => {
  const list = started(['a'], { ejection: { failures: 1 } })
  const s = list.openSession()
  const e = s.decline('unauthorized', { remoteCode: 401 })
  assert.ok(e instanceof Error)
  assert.equal(e.code, 'PEERLB_DECLINED')
  assert.equal(e.peer, 'a')
  assert.equal(e.remoteCode, 401)
  assert.equal(s.closed, true)
  assert.equal(list.introspect().ejected, 0)
  assert.throws(() => s.decline('again'), code('PEERLB_ALREADY_FINISHED'))
  assert.throws(() => s.ok(), code('PEERLB_ALREADY_FINISHED'))
  assert.throws(() => s.failover(), code('PEERLB_ALREADY_FINISHED'))
  const t = list.openSession()
  assert.equal(t.decline().remoteCode, null)
})

test('admin failover and delete set failoverRequested; a listener may move the session', () => {
  const list = started(['a', 'b', 'c'])
  const s = list.openSession()
  const moved = []
  list.subscribeSessions((e) => {
    if (e.kind === 'failover-requested' && e.session === s.id) moved.push(s.failover('asked'))
  })
  assert.equal(list.failover('a'), 'success')
  assert.deepEqual(moved, ['b'])
  assert.equal(s.failoverRequested, false)
  assert.equal(list.failover('a'), 'no-action-required')
  assert.equal(list.delete('b'), 'success')
  assert.deepEqual(moved, ['b', 'c'])
  assert.equal(list.listBackends().find((p) => p.id === 'a').failures, 0)
  s.close()
})

test('a throwing session listener is reported as a warning; the others still hear', async () => {
  const list = started(['a'])
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  list.subscribeSessions(() => {
    throw new Error('listener bug')
  })
  const heard = []
  const sub = list.subscribeSessions((e) => heard.push(e.kind))
  list.openSession().close()
  await new Promise((r) => setImmediate(r))
  process.off('warning', onWarning)
  assert.deepEqual(heard, ['created', 'terminated'])
  assert.ok(warnings.some((w) => /listener bug/.test(w.message)))
  assert.equal(sub.unsubscribe(), true)
  assert.equal(sub.cancel(), false)
  assert.throws(() => list.subscribeSessions('nope'), typeErr)
})

test('using closes a session at scope exit', { skip: typeof Symbol.dispose !== 'symbol' }, () => {
  const list = started(['a'])
  const s = list.openSession()
  s[Symbol.dispose]()
  assert.equal(s.closed, true)
  s[Symbol.dispose]() // an ended session is left alone
})

test('a session garbage-collected unclosed is closed', () => {
  const script = `
    const { PeerList } = require(${JSON.stringify(pkgDir)})
    const list = new PeerList({ shuffle: false })
    list.update({ add: ['a'] })
    list.start()
    const kinds = []
    list.subscribeSessions((e) => kinds.push(e.kind))
    ;(function () { list.openSession() })()
    const settle = () => new Promise((r) => setTimeout(r, 20))
    ;(async () => {
      for (let i = 0; i < 100 && list.introspect().sessions > 0; i++) {
        global.gc()
        await settle()
      }
      console.log(JSON.stringify({ sessions: list.introspect().sessions, pending: list.introspect().peers[0].pending, kinds }))
    })()
  `
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.equal(out.sessions, 0)
  assert.equal(out.pending, 0)
  assert.deepEqual(out.kinds, ['created', 'terminated'])
})

test('bad arguments throw and change nothing', () => {
  const list = started(['a', 'b'])
  const s = list.openSession()
  for (const reason of [5, {}, Symbol('r')]) assert.throws(() => s.failover(reason), typeErr)
  for (const opts of [5, 'x', { timeoutMs: 'soon' }, { remoteCode: '1006' }]) assert.throws(() => s.failover('r', opts), typeErr)
  assert.throws(() => s.failover('r', { timeoutMs: -1 }), code('PEERLB_INVALID_ARGUMENT'))
  assert.throws(() => s.failover('r', { remoteCode: 1.5 }), code('PEERLB_INVALID_ARGUMENT'))
  assert.throws(() => s.decline('r', { remoteCode: 2 ** 60 }), code('PEERLB_INVALID_ARGUMENT'))
  assert.equal(s.peer, 'a')
  assert.equal(s.bound, true)
  assert.equal(s.failovers, 0)
  for (const opts of [5, { timeoutMs: 'x' }, { shardKey: 5 }]) assert.throws(() => list.openSession(opts), typeErr)
  for (const id of [5, null, undefined, {}]) {
    assert.throws(() => list.failover(id), typeErr)
    assert.throws(() => list.available(id), typeErr)
    assert.throws(() => list.backendConfig(id), typeErr)
  }
  assert.throws(() => list.backendConfig('zzz'), code('PEERLB_PEER_NOT_IN_LIST'))
  for (const data of [5, null, undefined, true]) assert.throws(() => list.addBackend(data), typeErr)
  assert.equal(list.introspect().total, 2)
  assert.equal(list.introspect().sessions, 1)
  assert.throws(() => new Session(), Error)
  s.close()
})

test('addBackend takes an object or JSON text and answers JSON with the numbers', () => {
  const list = new PeerList({ shuffle: false })
  assert.deepEqual(JSON.parse(list.addBackend({ id: 'a', weight: 2 })), { result: 'success', code: 1, id: 'a' })
  assert.equal(JSON.parse(list.addBackend('{"id":"b"}')).code, AdminResult.SUCCESS)
  const failed = JSON.parse(list.addBackend('{nope'))
  assert.equal(failed.code, AdminResult.FAILED)
  assert.equal(failed.error, 'invalid-argument')
  assert.deepEqual(JSON.parse(list.addBackend({ id: 'c', url: 'ws://c' })).ignored, ['url'])
  assert.deepEqual(list.listBackends().map((p) => [p.id, p.weight]), [['a', 2], ['b', 1], ['c', 1]])
  assert.equal(JSON.parse(list.backendConfig('a')).weight, 2)
  assert.deepEqual(AdminResult, { SUCCESS: 1, NO_ACTION_REQUIRED: 3, FAILED: 4 })
  assert.deepEqual(adminResultCodes, { success: 1, 'no-action-required': 3, failed: 4 })
})

test('queries and capacity', () => {
  assert.equal(new PeerList().capacity, 10)
  const list = new PeerList({ shuffle: false, capacity: 64 })
  assert.equal(list.capacity, 64)
  list.update({ add: ['a', 'b'] })
  assert.equal(list.uninitialized('a'), true)
  assert.deepEqual([list.numAvailable(), list.numUnavailable(), list.numUninitialized()], [0, 0, 2])
  list.start()
  list.disable('b')
  assert.equal(list.available('a'), true)
  assert.equal(list.available('b'), false)
  assert.deepEqual([list.numAvailable(), list.numUnavailable(), list.numUninitialized()], [1, 1, 0])
  assert.deepEqual(list.peers(), ['a', 'b'])
  assert.throws(() => new PeerList({ capacity: -1 }), code('PEERLB_INVALID_ARGUMENT'))
  assert.throws(() => new PeerList({ capacity: 'ten' }), typeErr)
})

test('retry reports remote codes from the attempts\' errors', async () => {
  const list = started(['a', 'b'])
  await assert.rejects(
    list.retry(async (peer) => {
      if (peer === 'a') throw Object.assign(new Error('down'), { remoteCode: 503 })
      throw declined('no', { remoteCode: 429 })
    }),
    (e) => e.code === 'PEERLB_DECLINED' && e.peer === 'b' && e.remoteCode === 429,
  )
  await assert.rejects(
    list.retry(async () => {
      throw Object.assign(new Error('down'), { remoteCode: 503 })
    }, { maxAttempts: 2 }),
    (e) => e.code === 'PEERLB_RETRY_EXHAUSTED' && e.remoteCode === 503 && typeof e.peer === 'string',
  )
})
