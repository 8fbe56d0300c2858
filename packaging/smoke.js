// Smoke program for an installed `peerlb` npm package: the core API, then Node's fetch
// through peerlb/undici and http.get through peerlb/http, balanced over three local HTTP
// servers, one of them stopped halfway (every request must still succeed, the stopped one
// must be ejected). Exits non-zero on any failure.
'use strict'

const assert = require('node:assert/strict')
const http = require('node:http')
const { PeerList, coreVersion } = require('peerlb')
const { Dispatcher } = require('peerlb/undici')
const { Agent } = require('peerlb/http')

function serve() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end(`hello via ${req.headers.host}`))
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

function get(url, agent) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

async function main() {
  const servers = await Promise.all([serve(), serve(), serve()])
  const peers = servers.map((s) => `127.0.0.1:${s.address().port}`)
  const list = new PeerList({ shuffle: false })
  list.update({ add: peers })
  list.start()
  const c = list.choose()
  assert.equal(c.peer, peers[0])
  c.finish()
  const dispatcher = new Dispatcher(list)
  const agent = new Agent(list, { keepAlive: false })
  for (let i = 0; i < 60; i++) {
    if (i === 30) {
      servers[1].closeAllConnections()
      await new Promise((resolve) => servers[1].close(resolve))
    }
    const r = await fetch('http://svc.test/', { dispatcher })
    assert.equal(await r.text(), 'hello via svc.test')
    assert.equal(await get('http://svc.test/', agent), 'hello via svc.test')
  }
  const ejected = list.listBackends().filter((p) => p.ejected).map((p) => p.id)
  assert.deepEqual(ejected, [peers[1]])
  await dispatcher.close()
  for (const s of [servers[0], servers[2]]) {
    s.closeAllConnections()
    s.close()
  }
  console.log(`node smoke: peerlb ${coreVersion} on Node ${process.version}: ok (120 requests through fetch and http.get, one server stopped, ejected)`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
