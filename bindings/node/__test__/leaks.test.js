// Reference structure: a JS transport (or an Upstream's JS check) that refers to its own
// list must not keep the list alive forever. Each case runs in a child with --expose-gc.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const pkgDir = path.resolve(__dirname, '..')

function runGc(script) {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120000 })
  assert.equal(r.signal, null, `killed (lists never collected?)\n${r.stdout}${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

/** A script prelude: `collectAll(registry counter, n)` runs gc until n were collected. */
const prelude = `
  const peerlb = require(${JSON.stringify(pkgDir)})
  let collected = 0
  const registry = new FinalizationRegistry(() => collected++)
  async function collectAll(n) {
    const deadline = Date.now() + 60000
    while (collected < n && Date.now() < deadline) {
      gc()
      await new Promise((r) => setTimeout(r, 5))
    }
    return collected
  }
`

test('lists whose transport refers to them (property or closure) are collected and release their peers', () => {
  const out = runGc(`${prelude}
    const subscribers = [] // kept: they tell whether their peer is still retained
    ;(function () {
      for (let i = 0; i < 100; i++) {
        const transport = {
          retain(id, sub) { subscribers.push(sub); sub.setStatus('available') },
          release() { this.list.introspect() }, // uses its list
        }
        const list = new peerlb.PeerList({ transport })
        if (i % 2) transport.list = list // a property
        else transport.release = function () { list.introspect() } // a closure
        list.update({ add: ['p' + i + 'a', 'p' + i + 'b'] })
        list.start()
        list.choose().finish()
        registry.register(list, i)
      }
    })()
    collectAll(100).then((n) => {
      const stale = subscribers.filter((s) => s.setStatus('available') === false).length
      console.log(JSON.stringify({ collected: n, subscribers: subscribers.length, stale }))
    })
  `)
  assert.equal(out.collected, 100)
  assert.equal(out.subscribers, 200)
  assert.equal(out.stale, 200, 'every peer was released with its list')
})

test('10 000 such lists come and go without keeping memory', () => {
  const out = runGc(`${prelude}
    const make = (i) => {
      const transport = { retain(id, sub) { sub.setStatus('available') }, release() {} }
      const list = new peerlb.PeerList({ transport })
      transport.list = list
      list.update({ add: ['a' + i, 'b' + i, 'c' + i] })
      list.start()
      registry.register(list, i)
    }
    ;(async () => {
      for (let i = 0; i < 10000; i++) make(i)
      const n = await collectAll(10000)
      console.log(JSON.stringify({ collected: n, rssMb: Math.round(process.memoryUsage().rss / 1048576) }))
    })()
  `)
  assert.equal(out.collected, 10000)
})

test('a live list keeps its transport, even one that only the list refers to', () => {
  const out = runGc(`${prelude}
    const calls = []
    const list = new peerlb.PeerList({ shuffle: false, transport: {
      retain(id, sub) { calls.push('retain ' + id); sub.setStatus('available') },
      release(id) { calls.push('release ' + id) },
    } })
    list.update({ add: ['a'] })
    ;(async () => {
      for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setTimeout(r, 5)) }
      list.start()
      list.update({ add: ['b'] })
      list.stop()
      console.log(JSON.stringify(calls))
    })()
  `)
  assert.deepEqual(out, ['retain a', 'retain b', 'release a', 'release b'])
})

test('an Upstream whose JS check refers to it is collected (and stops checking)', () => {
  const out = runGc(`${prelude}
    let checks = 0
    ;(function () {
      for (let i = 0; i < 20; i++) {
        const up = new peerlb.Upstream({ backends: ['x' + i], intervalMs: 5, check: () => { checks++; return up.backends.length > 0 } })
        registry.register(up, i)
      }
    })()
    collectAll(20).then(async (n) => {
      await new Promise((r) => setTimeout(r, 50))
      const after = checks
      await new Promise((r) => setTimeout(r, 100))
      console.log(JSON.stringify({ collected: n, checksAfter: checks - after }))
    })
  `)
  assert.equal(out.collected, 20)
  assert.equal(out.checksAfter, 0, 'no check ran once its upstream was gone')
})
