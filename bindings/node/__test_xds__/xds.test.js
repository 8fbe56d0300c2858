// XdsUpdater from Node against a real ADS control plane (tests/xds/ads_server.py: grpcio +
// xds-protos, run as a child process; Python from $PEERLB_PYTHON), with an addon built with
// the `xds` feature (PEERLB_NODE_ADDON; make test-updaters-node-xds arranges both).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')
const { PeerList, XdsUpdater } = require('..')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what, cond, timeoutMs = 10000) {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(1)
  }
}
const peers = (l) =>
  l
    .introspect()
    .peers.map((p) => `${p.id}/${p.weight}/${p.zone ?? ''}/${p.priority ?? 0}`)
    .sort()

/** The control plane in a child process, driven by JSON lines. */
async function startAds() {
  const python = process.env.PEERLB_PYTHON || 'python3'
  const script = path.join(__dirname, '..', '..', '..', 'tests', 'xds', 'ads_server.py')
  const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: child.stdout })
  const queue = []
  const waiting = []
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)))
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)))
  const first = await next()
  assert.match(first, /^port \d+$/, 'ads_server.py did not start (grpcio, xds-protos?)')
  const command = async (c) => {
    child.stdin.write(JSON.stringify(c) + '\n')
    return JSON.parse(await next())
  }
  return { child, port: Number(first.split(' ')[1]), command }
}

test('XdsUpdater applies, follows a change and keeps the last good set when the server goes', async () => {
  const ads = await startAds()
  try {
    await ads.command({
      op: 'set',
      version: 'v1',
      clusters: {
        a: [{ addr: '10.0.0.1', port: 80, weight: 3, region: 'r', zone: 'z' }],
        b: [{ addr: '10.0.0.2', port: 80, priority: 1 }, { addr: '10.0.0.3', port: 80, health: 'UNHEALTHY' }],
      },
    })
    const l = new PeerList()
    assert.throws(() => new XdsUpdater(`127.0.0.1:${ads.port}`, []), { code: 'PEERLB_INVALID_ARGUMENT' })
    assert.throws(() => new XdsUpdater('https://127.0.0.1:1', ['a']), { code: 'PEERLB_INVALID_ARGUMENT' })
    assert.throws(() => new XdsUpdater('127.0.0.1:1', ['a'], { nodeId: '' }), { code: 'PEERLB_INVALID_ARGUMENT' })
    assert.throws(() => new XdsUpdater('127.0.0.1:1', 'a'), TypeError)
    assert.throws(() => new XdsUpdater('127.0.0.1:1', ['a'], { backoffInitialMs: 'x' }), TypeError)
    const b = new XdsUpdater(`127.0.0.1:${ads.port}`, ['a', 'b'], {
      nodeId: 'node-node',
      backoffInitialMs: 50,
      backoffMaxMs: 200,
    })
      .bind(l)
      .start()
    await waitFor('v1', () => peers(l).join() === '10.0.0.1:80/3/r/z/0,10.0.0.2:80/1//1')
    const t0 = performance.now()
    await ads.command({ op: 'set', version: 'v2', clusters: { a: [{ addr: '10.0.0.4', port: 81 }], b: [] } })
    await waitFor('v2', () => peers(l).join() === '10.0.0.4:81/1//0')
    const delay = performance.now() - t0
    console.log(`node: xds change reached the list in ${delay.toFixed(1)} ms`)
    assert.ok(delay < 500, `${delay} ms`)
    const requests = await ads.command({ op: 'requests' })
    assert.equal(requests[0].node_id, 'node-node')
    ads.child.stdin.write(JSON.stringify({ op: 'quit' }) + '\n')
    await waitFor('the outage reported', () => b.lastError?.code === 'PEERLB_SOURCE_FAILED')
    assert.equal(peers(l).join(), '10.0.0.4:81/1//0', 'last good set kept')
    b.stop()
  } finally {
    ads.child.kill()
  }
})
