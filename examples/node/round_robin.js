#!/usr/bin/env node
// Round-robin HTTP requests across local servers that this example starts itself.
//
//   node examples/node/round_robin.js [--requests N] [--servers N]
//
// A small JS transport probes each peer with a TCP connect and reports it available through
// its subscriber; requests go out with fetch() to the chosen peer, and every choice is
// finished with the outcome and latency. One server is stopped half-way: the transport marks
// it unavailable and the list stops choosing it.
'use strict'

const http = require('node:http')
const net = require('node:net')
const path = require('node:path')

let peerlb
try {
  peerlb = require('peerlb')
} catch {
  peerlb = require(path.resolve(__dirname, '../../bindings/node'))
}
const { PeerList } = peerlb

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const REQUESTS = arg('requests', 30)
const SERVERS = arg('servers', 3)

function startServer(n) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end(`hello from server ${n}\n`)
    })
    server.keepAliveTimeout = 100
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

/** Reports a peer available when a TCP connection to it succeeds, unavailable otherwise. */
class TcpProbeTransport {
  constructor() {
    this.name = 'js-tcp-probe'
    this.subscribers = new Map()
  }

  retain(peerId, subscriber) {
    this.subscribers.set(peerId, subscriber)
    subscriber.setStatus('connecting')
    this.probe(peerId)
  }

  release(peerId) {
    this.subscribers.delete(peerId)
  }

  probe(peerId) {
    const sub = this.subscribers.get(peerId)
    if (!sub) return Promise.resolve()
    const [host, port] = peerId.split(':')
    return new Promise((resolve) => {
      const sock = net.connect({ host, port: Number(port) })
      sock.once('connect', () => {
        sock.destroy()
        sub.setStatus('available')
        resolve()
      })
      sock.once('error', () => {
        sub.setStatus('unavailable')
        resolve()
      })
    })
  }
}

async function main() {
  const servers = await Promise.all(Array.from({ length: SERVERS }, (_, i) => startServer(i + 1)))
  const peers = servers.map((s) => `127.0.0.1:${s.address().port}`)
  const transport = new TcpProbeTransport()
  const list = new PeerList({ strategy: 'round-robin', shuffle: false, transport })
  list.update({ add: peers })
  list.start()
  // The probes run asynchronously; wait (bounded) until every server has been reached.
  for (let i = 0; i < 200 && list.introspect().available < peers.length; i++) {
    await new Promise((r) => setTimeout(r, 5))
  }

  const counts = Object.fromEntries(peers.map((p) => [p, 0]))
  let failures = 0
  for (let i = 0; i < REQUESTS; i++) {
    if (i === Math.floor(REQUESTS / 2) && servers.length > 1) {
      // Take the last server down; the next probe marks it unavailable.
      await new Promise((r) => {
        servers[servers.length - 1].close(r)
        servers[servers.length - 1].closeAllConnections()
      })
      await transport.probe(peers[peers.length - 1])
      console.log(`-- stopped ${peers[peers.length - 1]}; ${list.introspect().summary}`)
    }
    const choice = await list.chooseAsync({ timeoutMs: 2000 })
    const t0 = performance.now()
    try {
      const res = await fetch(`http://${choice.peer}/`)
      const body = (await res.text()).trim()
      choice.finish(res.ok ? 'ok' : 'failure', performance.now() - t0)
      counts[choice.peer]++
      console.log(`request ${String(i + 1).padStart(2)} -> ${choice.peer}: ${body}`)
    } catch (err) {
      choice.finish('failure', performance.now() - t0)
      failures++
      console.log(`request ${i + 1} -> ${choice.peer} failed: ${err.message}`)
    }
  }
  console.log('requests per peer:', counts, 'failures:', failures)
  console.log(list.introspect().summary)
  list.stop()
  for (const s of servers) s.close()

  const served = Object.values(counts)
  if (failures > 0 || served.slice(0, -1).some((n) => n === 0)) {
    console.error('unexpected: a live server got no requests, or a request failed')
    process.exit(1)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
