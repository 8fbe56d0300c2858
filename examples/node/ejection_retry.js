#!/usr/bin/env node
// Outlier ejection, retries and peer events over real local HTTP servers.
//
//   node examples/node/ejection_retry.js [--requests N] [--base-ms MS]
//
// Four servers; requests go through `list.retry`, so a failed connect is retried on another
// peer and the caller never sees it. Server 2 is stopped after the first round: its failures
// eject it (event 'ejected'); it is started again on the same port, and once the ejection
// time (`--base-ms`, real clock) is over it is restored (event 'restored') and gets requests
// again. The script exits non-zero if a request fails or an expected event is missing.
'use strict'

const http = require('node:http')
const path = require('node:path')

let peerlb
try {
  peerlb = require('peerlb')
} catch {
  peerlb = require(path.resolve(__dirname, '../../bindings/node'))
}
const { PeerList, declined } = peerlb

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const REQUESTS = arg('requests', 12)
const BASE_MS = arg('base-ms', 500)

function startServer(n, port = 0) {
  return new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      server.hits = (server.hits || 0) + 1
      res.setHeader('connection', 'close')
      res.end(`hello from server ${n}\n`)
    })
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

function get(peer) {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${peer}/`, { agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        if (res.statusCode === 503) reject(declined(`${peer} is overloaded`))
        else if (res.statusCode !== 200) reject(new Error(`${peer}: HTTP ${res.statusCode}`))
        else resolve(body.trim())
      })
    })
    req.on('error', (err) => reject(new Error(`${peer}: ${err.code || err.message}`)))
  })
}

async function round(list, label, n) {
  const counts = {}
  for (let i = 0; i < n; i++) {
    const body = await list.retry((peer) => get(peer), { maxAttempts: 3, timeoutMs: 5000 })
    counts[body] = (counts[body] || 0) + 1
  }
  console.log(`${label}:`, counts)
  return counts
}

async function main() {
  const servers = await Promise.all([1, 2, 3, 4].map((n) => startServer(n)))
  const list = new PeerList({ shuffle: false, ejection: { failures: 3, baseMs: BASE_MS, maxPercent: 25 } })
  const events = []
  let onRestored = () => {}
  list.subscribe((e) => {
    if (e.kind === 'added') return
    events.push(`${e.kind} ${e.peer}`)
    console.log(`  event: ${e.kind} ${e.peer}${e.detail ? ` (${e.detail})` : ''}`)
    if (e.kind === 'restored') onRestored()
  })
  list.update({ add: servers.map((s) => `127.0.0.1:${s.address().port}`) })
  list.start()
  const victim = servers[1]
  const victimId = `127.0.0.1:${victim.address().port}`

  await round(list, 'all up', REQUESTS)
  await new Promise((r) => victim.close(r))
  console.log(`stopped server 2 (${victimId})`)
  const down = await round(list, 'server 2 down (failed connects retried on other peers)', REQUESTS)
  const info = list.introspect().peers.find((p) => p.id === victimId)
  console.log(`server 2: ejected=${info.ejected} failures=${info.failures} ejected_for_ms=${info.ejected_for_ms}`)

  const back = await startServer(2, Number(victimId.split(':')[1]))
  console.log(`started server 2 again; waiting for the ejection time (${BASE_MS} ms) to end`)
  await new Promise((resolve) => {
    onRestored = resolve
    // (On a slow machine the ejection may have ended during the last round already.)
    if (!list.introspect().peers.find((p) => p.id === victimId).ejected) resolve()
  })
  const up = await round(list, 'server 2 back', REQUESTS)
  list.stop()
  await Promise.all([...servers.filter((s) => s !== victim), back].map((s) => new Promise((r) => s.close(r))))

  const problems = []
  if (!events.includes(`ejected ${victimId}`)) problems.push('server 2 was not ejected')
  if (down['hello from server 2']) problems.push('server 2 answered while stopped')
  if (!up['hello from server 2']) problems.push('server 2 got no requests after it was restored')
  if (problems.length) {
    console.error(`FAILED: ${problems.join('; ')}`)
    process.exit(1)
  }
  console.log('ok: failed connects were retried, server 2 was ejected and came back')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
