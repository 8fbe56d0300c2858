#!/usr/bin/env node
// The cost per request of the HTTP integrations: the same client with and without peerlb,
// against the same local keep-alive HTTP/1.1 servers, in the same run.
//
//   node bench/http_clients.js [--out target/bench/node-http.md] [--requests N] [--rounds R]
//
// Pairs measured (each request a GET of a 2-byte body on a reused connection):
//   fetch(url)                       vs fetch(url, { dispatcher })   (peerlb/undici)
//   undici.request with an Agent     vs undici.request with peerlb/undici's Dispatcher
//   http.get with a keep-alive Agent vs http.get with peerlb/http's Agent
// The servers run in a child process (one per peer), so they do not share this event loop;
// the plain clients go to one of them. Rounds alternate the variants; each variant's number
// is the median over rounds of the mean per request in a round, the overhead the difference
// between a pair's medians, and its ratio to the plain client.
'use strict'

const { fork } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')

const peerlb = require('..')
const { Dispatcher } = require('../undici')
const { Agent: PeerlbAgent } = require('../http')
const undici = require('undici')

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : dflt
}

if (process.argv.includes('--serve')) {
  const server = http.createServer((req, res) => {
    res.setHeader('content-length', '2')
    res.end('ok')
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => process.send(server.address().port))
  return
}

const REQUESTS = Number(arg('requests', 1000))
const ROUNDS = Number(arg('rounds', 7))
const OUT = arg('out', null)

function startServer() {
  const child = fork(__filename, ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve) => child.once('message', (port) => resolve({ child, peer: `127.0.0.1:${port}` })))
}

function httpGet(url, agent) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      .on('error', reject)
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main() {
  const servers = await Promise.all([startServer(), startServer()])
  const peers = servers.map((s) => s.peer)
  const direct = `http://${peers[0]}/`
  const service = 'http://svc.test/'
  const list = new peerlb.PeerList({ strategy: 'round-robin', shuffle: false })
  list.update({ add: peers })
  list.start()

  const plainAgent = new undici.Agent()
  const dispatcher = new Dispatcher(list)
  const plainHttpAgent = new http.Agent({ keepAlive: true })
  const peerlbHttpAgent = new PeerlbAgent(list)
  const pairs = {
    fetch: [
      async () => (await fetch(direct)).text(),
      async () => (await fetch(service, { dispatcher })).text(),
      'fetch + peerlb/undici Dispatcher',
    ],
    'undici.request': [
      async () => (await undici.request(direct, { dispatcher: plainAgent })).body.text(),
      async () => (await undici.request(service, { dispatcher })).body.text(),
      'undici.request + peerlb/undici Dispatcher',
    ],
    'http.get': [() => httpGet(direct, plainHttpAgent), () => httpGet(service, peerlbHttpAgent), 'http.get + peerlb/http Agent'],
  }
  const run = async (send, n) => {
    for (let i = 0; i < n; i++) await send()
  }
  for (const [plain, balanced] of Object.values(pairs)) {
    await run(plain, 100) // warm: connections made, code optimized
    await run(balanced, 100)
  }
  const samples = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, [plain, balanced]] of Object.entries(pairs)) {
      for (const [label, send] of [
        [`${name}|plain`, plain],
        [`${name}|peerlb`, balanced],
      ]) {
        const t0 = process.hrtime.bigint()
        await run(send, REQUESTS)
        const us = Number(process.hrtime.bigint() - t0) / 1000 / REQUESTS
        ;(samples[label] ??= []).push(us)
      }
    }
  }

  const undiciVersion = require('undici/package.json').version
  const lines = [
    `### Node HTTP integrations: cost per request (Node ${process.version}, undici ${undiciVersion})`,
    '',
    `GET of 2 bytes over a kept-alive connection to a local \`http\` server (a child process); median of ${ROUNDS} rounds of ${REQUESTS} requests, variants alternating; \`node bindings/node/bench/http_clients.js\`.`,
    '',
    '| client | without peerlb (µs/request) | with peerlb | overhead (µs) | ratio |',
    '|---|---:|---:|---:|---:|',
  ]
  for (const [name, [, , integration]] of Object.entries(pairs)) {
    const plain = median(samples[`${name}|plain`])
    const balanced = median(samples[`${name}|peerlb`])
    const sign = balanced - plain >= 0 ? '+' : ''
    lines.push(`| \`${name}\` / ${integration} | ${plain.toFixed(1)} | ${balanced.toFixed(1)} | ${sign}${(balanced - plain).toFixed(1)} | ${(balanced / plain).toFixed(2)}× |`)
  }
  const report = lines.join('\n') + '\n'
  console.log(report)
  if (OUT) {
    fs.mkdirSync(path.dirname(OUT), { recursive: true })
    fs.writeFileSync(OUT, report)
  }

  await dispatcher.close()
  await plainAgent.close()
  plainHttpAgent.destroy()
  peerlbHttpAgent.destroy()
  list.stop()
  for (const s of servers) s.child.kill()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
