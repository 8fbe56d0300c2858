// Updaters from Node: static, file (edits, bad lines) and DNS against a real UDP DNS server
// on 127.0.0.1 (node:dgram, below).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { PeerList, StaticUpdater, FileUpdater, DnsUpdater, XdsUpdater } = require('..')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what, cond, timeoutMs = 10000) {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
  return Date.now() - start
}
const ids = (l) => l.introspect().peers.map((p) => p.id).sort()

test('static updater applies on start, with weights and a lifecycle', () => {
  const l = new PeerList({ strategy: 'weighted-round-robin', shuffle: false })
  const b = new StaticUpdater([{ id: 'a:1', weight: 3 }, 'b:1']).bind(l)
  assert.equal(b.running, false)
  assert.deepEqual(ids(l), [])
  b.start()
  assert.deepEqual(ids(l), ['a:1', 'b:1'])
  assert.deepEqual(b.peers(), [{ id: 'a:1', weight: 3 }, { id: 'b:1', weight: 1 }])
  assert.throws(() => b.start(), { code: 'PEERLB_ALREADY_STARTED' })
  b.stop()
  assert.throws(() => b.stop(), { code: 'PEERLB_NOT_STARTED' })
  assert.equal(ids(l).length, 2)
})

test('bad arguments throw, never crash', () => {
  const l = new PeerList()
  assert.throws(() => new StaticUpdater('a:1'), TypeError)
  // weight 0 and bad ids are the core's to judge: start fails and applies nothing
  const zero = new StaticUpdater([{ id: 'b:1' }, { id: 'a:1', weight: 0 }]).bind(l)
  assert.throws(() => zero.start(), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.equal(zero.running, false)
  assert.deepEqual(ids(l), [])
  assert.throws(() => new StaticUpdater([{ id: 'a:1', weight: 1.5 }]), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new StaticUpdater([{ id: 'a:1', weight: '2' }]), TypeError)
  assert.throws(() => new StaticUpdater(['a:1']).bind({}), TypeError)
  assert.throws(() => new StaticUpdater(['']).bind(l).start(), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new FileUpdater(42), TypeError)
  assert.throws(() => new DnsUpdater('x.test', { record: 'a' }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new DnsUpdater('x.test', { record: 'mx' }).bind(l), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new DnsUpdater('x.test', { nameserver: 'nope' }).bind(l), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new DnsUpdater('x.test', { minIntervalMs: -1 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new DnsUpdater('x.test', { minIntervalMs: '1' }), TypeError)
  assert.throws(() => new DnsUpdater('x.test', { record: 'a', port: 70000 }), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new FileUpdater(''), { code: 'PEERLB_INVALID_ARGUMENT' })
  assert.throws(() => new FileUpdater('/x', { pollIntervalMs: 'often' }), TypeError)
})

test('file updater follows edits and keeps the last good set', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-'))
  const file = path.join(dir, 'peers.txt')
  fs.writeFileSync(file, '# backends\na:1 2\nb:1\n')
  const l = new PeerList()
  const b = new FileUpdater(file, { pollIntervalMs: 20 }).bind(l).start()
  try {
    assert.deepEqual(ids(l), ['a:1', 'b:1'])
    fs.writeFileSync(file, 'c:1\n')
    await waitFor('edit', () => ids(l).join() === 'c:1')
    fs.writeFileSync(file, 'c:1\nbad line here\n')
    await waitFor('error', () => b.lastError !== null)
    assert.equal(b.lastError.code, 'PEERLB_SOURCE_FAILED')
    assert.match(b.lastError.message, /peers\.txt:2/)
    assert.deepEqual(ids(l), ['c:1'])
    fs.unlinkSync(file)
    await waitFor('missing', () => /cannot read/.test(String(b.lastError && b.lastError.message)))
    assert.deepEqual(ids(l), ['c:1'])
    assert.ok(b.stats().failures >= 2)
  } finally {
    b.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// A DNS server answering A and SRV questions from `zone`.
function dnsServer(zone) {
  const sock = dgram.createSocket('udp4')
  const encodeName = (name) =>
    Buffer.concat([
      ...name.replace(/\.$/, '').split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
      Buffer.from([0]),
    ])
  sock.on('message', (q, rinfo) => {
    let end = 12
    while (q[end] !== 0) end += q[end] + 1
    const question = q.subarray(12, end + 5)
    const qtype = q.readUInt16BE(end + 1)
    let records = []
    if (zone.rcode === 0 && qtype === 1) records = zone.a.map((ip) => [1, Buffer.from(ip.split('.').map(Number))])
    if (zone.rcode === 0 && qtype === 33) {
      records = zone.srv.map(([p, w, port, t]) => {
        const head = Buffer.alloc(6)
        head.writeUInt16BE(p, 0)
        head.writeUInt16BE(w, 2)
        head.writeUInt16BE(port, 4)
        return [33, Buffer.concat([head, encodeName(t)])]
      })
    }
    const header = Buffer.alloc(12)
    header.writeUInt16BE(q.readUInt16BE(0), 0)
    header.writeUInt16BE(0x8400 | (q.readUInt16BE(2) & 0x0100) | zone.rcode, 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(records.length, 6)
    const answers = records.map(([t, data]) => {
      const rr = Buffer.alloc(12)
      rr.writeUInt16BE(0xc00c, 0)
      rr.writeUInt16BE(t, 2)
      rr.writeUInt16BE(1, 4)
      rr.writeUInt32BE(0, 6)
      rr.writeUInt16BE(data.length, 10)
      return Buffer.concat([rr, data])
    })
    sock.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address)
  })
  return new Promise((resolve) => sock.bind(0, '127.0.0.1', () => resolve(sock)))
}

test('dns updater follows A records and keeps the last good set on SERVFAIL', async () => {
  const zone = { rcode: 0, a: ['10.0.0.1', '10.0.0.2'], srv: [] }
  const sock = await dnsServer(zone)
  const l = new PeerList()
  const b = new DnsUpdater('backends.test', {
    record: 'a',
    port: 80,
    nameserver: `127.0.0.1:${sock.address().port}`,
    minIntervalMs: 30,
    timeoutMs: 300,
  }).bind(l)
  try {
    b.start()
    await waitFor('first', () => ids(l).join() === '10.0.0.1:80,10.0.0.2:80')
    zone.a = ['10.0.0.3']
    const took = await waitFor('change', () => ids(l).join() === '10.0.0.3:80')
    console.log(`node: dns change reached the list in ${took} ms`)
    zone.rcode = 2
    await waitFor('servfail', () => b.lastError !== null)
    assert.equal(b.lastError.code, 'PEERLB_SOURCE_FAILED')
    assert.deepEqual(ids(l), ['10.0.0.3:80'])
  } finally {
    b.stop()
    sock.close()
  }
})

test('dns SRV weights reach weighted round-robin', async () => {
  const zone = { rcode: 0, a: [], srv: [[10, 3, 9001, 'one.test'], [10, 1, 9002, 'two.test'], [20, 50, 1, 'x.test']] }
  const sock = await dnsServer(zone)
  const l = new PeerList({ strategy: 'weighted-round-robin', shuffle: false })
  l.start()
  const b = new DnsUpdater('_h._tcp.test', { nameserver: `127.0.0.1:${sock.address().port}`, minIntervalMs: 50 }).bind(l)
  try {
    b.start()
    await waitFor('srv', () => ids(l).length === 2)
    const counts = {}
    for (let i = 0; i < 400; i++) {
      const c = l.choose({ timeoutMs: 1000 })
      counts[c.peer] = (counts[c.peer] || 0) + 1
      c.finish()
    }
    assert.deepEqual(counts, { 'one.test:9001': 300, 'two.test:9002': 100 })
  } finally {
    b.stop()
    l.stop()
    sock.close()
  }
})

test('updaters drive a JS transport: synchronously on start, from library threads later', async () => {
  const retained = []
  const transport = {
    retain(id, sub) {
      retained.push(id)
      sub.setStatus('available')
    },
    release() {},
  }
  const l = new PeerList({ transport, shuffle: false })
  l.start()
  const s = new StaticUpdater(['a:1', 'b:1']).bind(l).start()
  assert.deepEqual(retained, ['a:1', 'b:1'], 'retained during start, on this thread')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-'))
  const file = path.join(dir, 'peers.txt')
  fs.writeFileSync(file, 'c:1\n')
  const f = new FileUpdater(file, { pollIntervalMs: 20 }).bind(l).start()
  fs.writeFileSync(file, 'c:1\nd:1\n')
  await waitFor('retain from the poller thread', () => retained.includes('d:1'))
  assert.equal(l.choose().peer.length > 0, true)
  f.stop()
  s.stop()
  l.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('file updater: FIFOs, /dev/zero and files over maxSize are source failures; nothing blocks', () => {
  const { spawnSync } = require('node:child_process')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-'))
  try {
    const fifo = path.join(dir, 'fifo')
    const later = path.join(dir, 'later')
    const big = path.join(dir, 'big')
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo')
    fs.writeFileSync(later, 'a:1\n')
    fs.writeFileSync(big, 'a:1\n'.repeat(10))
    // In a child: a regression that blocks (a FIFO read waits for a writer) fails the test
    // by its timeout instead of hanging the run.
    const script = `
      const { PeerList, FileUpdater } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const fs = require('node:fs')
      const { spawnSync } = require('node:child_process')
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
      ;(async () => {
        const out = {}
        const list = new PeerList()
        const start = (file, opts) => { const b = new FileUpdater(file, opts).bind(list); b.start(); return b }
        out.fifo = start(${JSON.stringify(fifo)}).lastError.code
        out.zero = start('/dev/zero').lastError.code
        out.big = start(${JSON.stringify(big)}, { maxSize: 16 }).lastError.message.includes('limit of 16 bytes')
        // A file that becomes a FIFO after start: every poll fails, the last good set stays,
        // and an unrelated wait still ends at its deadline.
        const follower = new PeerList()
        const b = start(${JSON.stringify(later)}, { pollIntervalMs: 10 })
        b.stop()
        const f = new FileUpdater(${JSON.stringify(later)}, { pollIntervalMs: 10 }).bind(follower).start()
        fs.unlinkSync(${JSON.stringify(later)})
        spawnSync('mkfifo', [${JSON.stringify(later)}])
        while (f.lastError === null) await sleep(10)
        out.laterCode = f.lastError.code
        out.kept = follower.introspect().peers.map((p) => p.id)
        const idle = new PeerList({ transport: { retain() {}, release() {} } })
        idle.update({ add: ['x'] }); idle.start()
        const t0 = Date.now()
        try { await idle.chooseAsync({ timeoutMs: 200 }) } catch (e) { out.wait = e.code }
        out.waitedLessThan10s = Date.now() - t0 < 10000
        f.stop()
        console.log(JSON.stringify(out))
      })()
    `
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
    assert.equal(r.signal, null, `blocked: ${r.stderr}`)
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      fifo: 'PEERLB_SOURCE_FAILED',
      zero: 'PEERLB_SOURCE_FAILED',
      big: true,
      laterCode: 'PEERLB_SOURCE_FAILED',
      kept: ['a:1'],
      wait: 'PEERLB_TIMEOUT',
      waitedLessThan10s: true,
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('XdsUpdater: bad arguments are errors in every build; a plain addon refuses to bind', () => {
  const l = new PeerList()
  assert.throws(() => new XdsUpdater('127.0.0.1:1', 'a'), TypeError)
  assert.throws(() => new XdsUpdater('127.0.0.1:1', ['a'], { timeoutMs: 'x' }), TypeError)
  let binding = null
  try {
    binding = new XdsUpdater('127.0.0.1:1', ['a']).bind(l)
  } catch (e) {
    assert.equal(e.code, 'PEERLB_INVALID_ARGUMENT')
    assert.match(e.message, /without xDS support/)
  }
  if (binding) assert.equal(binding.running, false) // an addon built with `xds`
})
