// Real HTTP/1.1 backends on 127.0.0.1 for the integration tests (keep-alive), and a
// self-signed certificate for the TLS ones. Each backend answers `GET /` (and any other
// path) and `POST /` with 200 and `server=<i> host=<Host header>`, `/fail` with 503, and
// `/hang` never; it counts its requests. `kill()` makes it vanish like a crashed process:
// the port is closed (connects are refused) and open connections are reset.
'use strict'

const http = require('node:http')
const https = require('node:https')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

/** Starts one backend; `tls` = {cert, key} serves HTTPS (SNI names seen: `serverNames`). */
async function backend(index, tls) {
  const b = { index, hits: 0, hosts: new Set(), serverNames: new Set(), sockets: new Set(), killed: false }
  const handle = (req, res) => {
    b.hits++
    b.hosts.add(req.headers.host)
    if (req.socket.servername) b.serverNames.add(req.socket.servername)
    req.resume()
    req.on('end', () => {
      if (req.url.startsWith('/hang')) return
      const body = `server=${index} host=${req.headers.host}`
      res.writeHead(req.url.startsWith('/fail') ? 503 : 200, { 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  }
  b.server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handle) : http.createServer(handle)
  b.server.keepAliveTimeout = 30000
  b.server.on(tls ? 'secureConnection' : 'connection', (sock) => {
    b.sockets.add(sock)
    sock.on('close', () => b.sockets.delete(sock))
  })
  await new Promise((resolve, reject) => {
    b.server.once('error', reject)
    b.server.listen(0, '127.0.0.1', resolve)
  })
  b.port = b.server.address().port
  b.peer = `127.0.0.1:${b.port}`
  b.kill = () =>
    new Promise((resolve) => {
      if (b.killed) return resolve()
      b.killed = true
      b.server.close(() => resolve())
      for (const sock of b.sockets) sock.resetAndDestroy ? sock.resetAndDestroy() : sock.destroy()
    })
  return b
}

async function start(n, tls) {
  const out = []
  for (let i = 0; i < n; i++) out.push(await backend(i, tls))
  return out
}

const totalHits = (backends) => backends.reduce((n, b) => n + b.hits, 0)

/** A certificate for `name` and its key, made with the openssl command. */
function selfSigned(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-tls-'))
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`,
    ], { stdio: 'ignore' })
    return { cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A transport whose peers become available only when `releaseAll()` says so. */
class SlowToStart {
  constructor() {
    this.subscribers = []
  }

  retain(id, subscriber) {
    this.subscribers.push(subscriber)
  }

  release() {}

  releaseAll() {
    for (const s of this.subscribers) s.setStatus('available')
  }
}

/**
 * Runs `work()` while a 10 ms timer measures the event loop's lateness; `phase()` names
 * the current phase. Returns the longest lateness per phase, in ms.
 */
async function lateness(work, phase) {
  const worst = {}
  let stop = false
  const tick = (async () => {
    while (!stop) {
      const t0 = performance.now()
      await new Promise((resolve) => setTimeout(resolve, 10))
      const late = performance.now() - t0 - 10
      const p = phase()
      worst[p] = Math.max(worst[p] ?? 0, late)
    }
  })()
  try {
    await work()
  } finally {
    stop = true
    await tick
  }
  return worst
}

module.exports = { start, totalHits, selfSigned, SlowToStart, lateness }
