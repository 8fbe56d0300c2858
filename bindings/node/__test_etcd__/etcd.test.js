// EtcdUpdater from Node against a real etcd (the `etcd` binary: $PEERLB_ETCD or on PATH),
// with an addon built with the `etcd` feature (PEERLB_NODE_ADDON; make test-updaters-etcd
// arranges both). Fails without etcd.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { PeerList, EtcdUpdater } = require('..')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => resolve(p))
    })
  })
const b64 = (s) => Buffer.from(s).toString('base64')
async function waitFor(what, cond, timeoutMs = 10000) {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}
const peers = (l) =>
  l
    .introspect()
    .peers.map((p) => `${p.id}/${p.weight}`)
    .sort()

test('EtcdUpdater follows a prefix and keeps the last good set when etcd dies', async () => {
  const bin = process.env.PEERLB_ETCD || 'etcd'
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-etcd-'))
  const [cp, pp] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${cp}`
  const peer = `http://127.0.0.1:${pp}`
  const etcd = spawn(bin, ['--name', 't', '--data-dir', dir, '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `t=${peer}`, '--log-level', 'error'],
  { stdio: 'ignore' })
  let exited = false
  etcd.on('error', () => { exited = true })
  etcd.on('exit', () => { exited = true })
  const call = async (p, body) => {
    const r = await fetch(url + p, { method: 'POST', body: JSON.stringify(body) })
    if (!r.ok) throw new Error(`etcd ${p}: ${r.status}`)
  }
  const put = (k, v) => call('/v3/kv/put', { key: b64(k), value: b64(v) })
  const del = (k) => call('/v3/kv/deleterange', { key: b64(k) })
  try {
    const deadline = Date.now() + 30000
    for (;;) {
      try {
        await put('/ready', '1')
        break
      } catch (e) {
        if (exited) throw new Error(`etcd (${bin}) did not start: install etcd-server or set PEERLB_ETCD`)
        if (Date.now() > deadline) throw e
        await sleep(50)
      }
    }
    await put('/svc/a', '10.0.0.1:80')
    await put('/svc/b', JSON.stringify({ addr: '10.0.0.2:80', weight: 4 }))
    const l = new PeerList()
    assert.throws(() => new EtcdUpdater([url], '').bind(l), { code: 'PEERLB_INVALID_ARGUMENT' })
    assert.throws(() => new EtcdUpdater(url, '/svc/'), TypeError)
    const b = new EtcdUpdater([url], '/svc/', { timeoutMs: 500, retryIntervalMs: 100 }).bind(l).start()
    await waitFor('initial', () => peers(l).join() === '10.0.0.1:80/1,10.0.0.2:80/4')
    const t0 = Date.now()
    await put('/svc/10.0.0.3:80', '')
    await waitFor('put', () => peers(l).length === 3)
    console.log(`node: etcd put reached the list in ${Date.now() - t0} ms`)
    await del('/svc/a')
    await waitFor('delete', () => peers(l).join() === '10.0.0.2:80/4,10.0.0.3:80/1')
    etcd.kill('SIGKILL')
    await waitFor('failure reported', () => b.lastError !== null)
    assert.equal(b.lastError.code, 'PEERLB_SOURCE_FAILED')
    assert.equal(peers(l).join(), '10.0.0.2:80/4,10.0.0.3:80/1')
    b.stop()
  } finally {
    etcd.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
