#!/usr/bin/env node
// Measures the cost of `choose` + `finish` from Node against an empty call into the same
// addon (`_native.noop()`), and writes a markdown table.
//
//   node bench/choose.js [--out target/bench/node.md] [--iters N]
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { PeerList, _native } = require('..')

const argv = process.argv
const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : null
const ITERS = argv.includes('--iters') ? Number(argv[argv.indexOf('--iters') + 1]) : 2_000_000
const ROUNDS = 7

function list(strategy) {
  const l = new PeerList({ strategy, seed: 1 })
  l.update({ add: Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1}:8080`) })
  l.start()
  return l
}

/** ns per iteration: the fastest of ROUNDS rounds of `n` calls of fn(n) (the machine is shared; the minimum is the least noisy). */
function measure(fn, n = ITERS) {
  fn(Math.min(n, 100_000)) // warm up (JIT)
  const per = []
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    fn(n)
    per.push(Number(process.hrtime.bigint() - t0) / n)
  }
  per.sort((a, b) => a - b)
  return per[0]
}

const noop = _native.noop
const rr = list('round-robin')
const fp = list('fewest-pending')
const rnd = list('random')
const p2c = list('two-random-choices')
let sink = 0

const cases = [
  ['empty call: `_native.noop()`', (n) => { for (let i = 0; i < n; i++) noop() }],
  ['two empty calls (the floor for choose + finish)', (n) => { for (let i = 0; i < n; i++) { noop(); noop() } }],
  ['round-robin `choose()` + `finish()`', (n) => { for (let i = 0; i < n; i++) { const c = rr.choose(); sink += c.peer.length; c.finish() } }],
  ['empty plain N-API call: `_native.noopRaw()`', (n) => { for (let i = 0; i < n; i++) _native.noopRaw() }],
  ['round-robin raw `_native.choose0(id)` + `_native.finish(id, slot, 0, -1)` (no JS Choice)', (n) => { const id = rr._id; const { choose0, finish } = _native; for (let i = 0; i < n; i++) { const r = choose0(id); finish(id, r % 4294967296, 0, -1) } }],
  ["round-robin `choose({timeoutMs})` + `finish('ok', ms)`", (n) => { const o = { timeoutMs: 100 }; for (let i = 0; i < n; i++) { const c = rr.choose(o); c.finish('ok', 1.5) } }],
  ['random `choose()` + `finish()`', (n) => { for (let i = 0; i < n; i++) rnd.choose().finish() }],
  ['fewest-pending `choose()` + `finish()`', (n) => { for (let i = 0; i < n; i++) fp.choose().finish() }],
  ['two-random-choices `choose()` + `finish()`', (n) => { for (let i = 0; i < n; i++) p2c.choose().finish() }],
]

const rows = []
let base = null
for (const [name, fn] of cases) {
  const ns = measure(fn)
  if (base === null) base = ns
  rows.push([name, ns])
  console.log(`${name.padEnd(60)} ${ns.toFixed(1).padStart(8)} ns  ${(ns / base).toFixed(2)}x`)
}

async function asyncCase() {
  const n = 200_000
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) (await rr.chooseAsync({ timeoutMs: 100 })).finish()
  return Number(process.hrtime.bigint() - t0) / n
}

asyncCase().then((ns) => {
  const name = 'round-robin `await chooseAsync()` + `finish()` (fast path)'
  rows.push([name, ns])
  console.log(`${name.padEnd(60)} ${ns.toFixed(1).padStart(8)} ns  ${(ns / base).toFixed(2)}x`)
  const ratio = rows[2][1] / base
  const md = [
    '# Node: choose + finish vs an empty addon call',
    '',
    `node ${process.version}, ${process.platform}-${process.arch}, 8 peers, fastest of ${ROUNDS} rounds of ${ITERS} calls` +
      ` (async: one round of 200000). Goal: choose + finish <= 2x an empty call.`,
    '',
    '| case | ns/op | x empty call |',
    '|---|---:|---:|',
    ...rows.map(([name, v]) => `| ${name} | ${v.toFixed(1)} | ${(v / base).toFixed(2)} |`),
    '',
    `**round-robin choose + finish = ${ratio.toFixed(2)}x an empty call** ` +
      `(${rows[1][1] / base >= 1.5 ? 'two crossings of the boundary alone cost ' + (rows[1][1] / base).toFixed(2) + 'x' : ''}).`,
    '',
  ].join('\n')
  if (out) {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true })
    fs.writeFileSync(out, md)
    console.log(`wrote ${out}`)
  }
  if (sink < 0) console.log(sink)
})
