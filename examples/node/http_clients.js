#!/usr/bin/env node
// Balancing inside the HTTP clients Node programs already use: fetch and undici.request
// with peerlb/undici's Dispatcher, and http.get with peerlb/http's Agent.
//
//   node examples/node/http_clients.js [--requests N]
//
// Starts four HTTP servers on 127.0.0.1 and sends GETs to http://orders.internal/ through
// each client; peerlb chooses the server for every request. Halfway, one server is stopped:
// the integrations send its requests to another peer (the caller sees no error) and the
// list ejects it. The servers answer with the Host they were sent, which must stay
// orders.internal.
'use strict'

const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')

function load(name) {
  try {
    return require(name)
  } catch {
    return require(path.resolve(__dirname, '../../bindings/node', name.replace(/^peerlb\/?/, './')))
  }
}
const { PeerList } = load('peerlb')
const { Dispatcher } = load('peerlb/undici')
const { Agent } = load('peerlb/http')
// undici itself: the project's, else the copy the repo's bindings/node has (a devDependency).
const undici = require(require.resolve('undici', { paths: [process.cwd(), path.resolve(__dirname, '../../bindings/node')] }))

const i = process.argv.indexOf('--requests')
const REQUESTS = i >= 0 ? Number(process.argv[i + 1]) : 400
const URL = 'http://orders.internal/'

function startServer() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end(`${server.address().port} ${req.headers.host}`))
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

function httpGet(agent) {
  return new Promise((resolve, reject) => {
    http
      .get(URL, { agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve(body))
      })
      .on('error', reject)
  })
}

async function main() {
  const servers = await Promise.all([0, 1, 2, 3].map(startServer))
  const peers = servers.map((s) => `127.0.0.1:${s.address().port}`)
  const list = new PeerList({ strategy: 'random', seed: 7 })
  list.update({ add: peers })
  list.start()
  console.log(`peers: ${peers.join(', ')}`)

  const dispatcher = new Dispatcher(list)
  const agent = new Agent(list)
  const clients = {
    fetch: async () => (await fetch(URL, { dispatcher })).text(),
    'undici.request': async () => (await undici.request(URL, { dispatcher })).body.text(),
    'http.get': () => httpGet(agent),
  }
  const counts = Object.fromEntries(Object.keys(clients).map((name) => [name, Object.fromEntries(peers.map((p) => [p, 0]))]))
  const dead = peers[1]
  const half = Math.floor(REQUESTS / 2)
  for (const phase of ['before', 'after']) {
    if (phase === 'after') {
      servers[1].closeAllConnections()
      await new Promise((resolve) => servers[1].close(resolve))
      console.log(`stopped ${dead}`)
    }
    for (let n = 0; n < half; n++) {
      for (const [name, send] of Object.entries(clients)) {
        const [port, host] = (await send()).split(' ')
        assert.equal(host, 'orders.internal', `${name}: Host not kept`)
        counts[name][`127.0.0.1:${port}`]++
      }
    }
  }

  console.log(`${2 * half} GETs through each client, 0 errors seen by the caller, Host kept:`)
  for (const [name, perPeer] of Object.entries(counts)) {
    console.log(`  ${name.padEnd(15)} ${peers.map((p) => `${p}: ${String(perPeer[p]).padStart(3)}`).join('  ')}`)
    assert.equal(Object.values(perPeer).reduce((a, b) => a + b, 0), 2 * half)
  }
  const ejected = list.listBackends().filter((b) => b.ejected).map((b) => b.id)
  console.log(`ejected: ${ejected.join(', ') || 'none'}; list: ${list.introspect().summary}`)
  assert.deepEqual(ejected, [dead])

  await dispatcher.close()
  agent.destroy()
  list.stop()
  for (const s of [servers[0], servers[2], servers[3]]) {
    s.closeAllConnections()
    s.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
