// The soak's Node surface: a peerlb PeerList fed by the file and DNS updaters, async client
// loops sending HTTP requests through `list.retry` at a steady rate, and the harness's
// commands read as JSON lines on stdin (replies on stdout). See soak/README.md.
//
//     node driver.js <path of the peerlb package> '<config JSON>'
'use strict'

const fs = require('node:fs')
const http = require('node:http')
const readline = require('node:readline')

const peerlb = require(require('node:path').resolve(process.argv[2]))
const config = JSON.parse(process.argv[3])

const log = fs.createWriteStream(config.log)
const problems = []
const counters = { requests: 0, ok: 0, caller_errors: 0, expected_errors: 0, inflight: 0 }
let thrown = 0
let quitting = false
const stopped = { since: null, started: 0 }

function problem (text) {
  if (problems.length < 20) problems.push(text)
}

process.on('unhandledRejection', (reason) => problem(`unhandled rejection: ${reason}`))
process.on('uncaughtException', (err) => problem(`uncaught exception: ${err && err.stack}`))
process.on('warning', (w) => {
  // A throwing subscriber is reported as a process warning; the soak's throws on purpose.
  if (w.code === 'PEERLB_SUBSCRIBER_THREW' && String(w.message).includes('on purpose')) thrown++
  else if (w.code === 'PEERLB_SUBSCRIBER_THREW') problem(`subscriber threw: ${w.message}`)
})

const e = config.ejection
const list = new peerlb.PeerList({
  strategy: config.strategy,
  ejection: {
    failures: e.failures,
    baseMs: e.base_ms,
    maxMs: e.max_ms,
    maxPercent: e.max_percent,
    panicPercent: e.panic_percent
  }
})
const events = list.subscribe((ev) => log.write(`E ${Date.now()} ${ev.kind} ${ev.peer}\n`))
let throwing = null

const fileBinding = new peerlb.FileUpdater(config.file, { pollIntervalMs: config.file_poll_ms }).bind(list)
const dnsBinding = new peerlb.DnsUpdater(config.dns_name, {
  record: 'srv',
  nameserver: config.dns,
  minIntervalMs: config.dns_min_interval_ms,
  maxIntervalMs: 1000,
  timeoutMs: 500,
  emptyThreshold: config.dns_empty_threshold
}).bind(list)
list.start()
fileBinding.start()
dnsBinding.start()

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })

function get (peer) {
  const t = Date.now()
  const [host, port] = [peer.slice(0, peer.lastIndexOf(':')), peer.slice(peer.lastIndexOf(':') + 1)]
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent, timeout: config.request_timeout_ms }, (res) => {
      res.resume()
      res.on('end', () => {
        const ok = res.statusCode === 200
        log.write(`A ${t} ${peer} ${ok ? 'ok' : 'fail'}\n`)
        if (ok) resolve()
        else reject(new Error(`${peer} answered ${res.statusCode}`))
      })
      res.on('error', (err) => {
        log.write(`A ${t} ${peer} fail\n`)
        reject(err)
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${peer}: timed out`)))
    req.on('error', (err) => {
      log.write(`A ${t} ${peer} fail\n`)
      reject(err)
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function worker (index) {
  const interval = 1000 / config.rate
  let next = performance.now() + interval * index / 4
  while (!quitting) {
    const delay = next - performance.now()
    if (delay > 0) await sleep(delay)
    next += interval
    if (next + interval * 10 < performance.now()) next = performance.now()
    counters.requests++
    counters.inflight++
    let outcome
    try {
      await list.retry((peer) => get(peer), {
        maxAttempts: config.max_attempts,
        timeoutMs: config.retry_timeout_ms
      })
      outcome = 'ok'
    } catch (err) {
      const recently = stopped.since !== null || performance.now() - stopped.started < 200
      if (recently && err && err.code === 'PEERLB_NOT_STARTED') {
        outcome = 'expected_errors'
      } else {
        outcome = 'caller_errors'
        problem(`caller error: ${err && err.code} (${err && err.message})`)
      }
    }
    counters.inflight--
    counters[outcome]++
  }
}

const workers = []
for (let i = 0; i < config.workers; i++) workers.push(worker(i))

function report () {
  const info = list.introspect()
  return {
    ...counters,
    pending: info.peers.reduce((n, p) => n + p.pending, 0),
    panic: info.panic,
    peers: info.total,
    thrown,
    problems: [...problems]
  }
}

async function handle (cmd) {
  try {
    switch (cmd.cmd) {
      case 'admin':
        list[cmd.action](cmd.peer)
        break
      case 'stop':
        stopped.since = performance.now()
        list.stop()
        break
      case 'start':
        list.start()
        stopped.started = performance.now()
        stopped.since = null
        break
      case 'throwing':
        if (cmd.on) {
          throwing = list.subscribe(() => { throw new Error('soak: a subscriber that throws on purpose') })
        } else if (throwing) {
          throwing.unsubscribe()
          throwing = null
        }
        break
      case 'report':
        return report()
      case 'quit': {
        quitting = true
        await Promise.all(workers)
        fileBinding.stop()
        dnsBinding.stop()
        events.unsubscribe()
        await new Promise((resolve) => log.end(resolve))
        return { ...report(), final: true }
      }
      default:
        return { ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` }
    }
  } catch (err) {
    return { ok: false, error: `${err.code}: ${err.message}` }
  }
  return { ok: true }
}

const input = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
input.on('line', (line) => {
  queue = queue.then(async () => {
    const cmd = JSON.parse(line)
    const reply = await handle(cmd)
    process.stdout.write(JSON.stringify(reply) + '\n', () => {
      if (cmd.cmd === 'quit') {
        agent.destroy()
        process.exit(problems.length === 0 ? 0 : 1)
      }
    })
  })
})
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
