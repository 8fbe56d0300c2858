#!/usr/bin/env node
// Measures the cost of `choose` + `finish` from Node against an empty call into the same
// addon (`_native.noop()`), then peerlb next to npm's `hashring` and `load-balancers` on the
// same 100 peers (devDependencies), and writes a markdown table; with --out, also
// node.compare.json beside it for the summary's comparison table.
//
//   node bench/choose.js [--out target/bench/node.md] [--iters N]
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { PeerList, Choice, _native } = require('..')

const argv = process.argv
const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : null
const ITERS = argv.includes('--iters') ? Number(argv[argv.indexOf('--iters') + 1]) : 2_000_000
const ROUNDS = 7
/** Round-robin choose + finish may cost at most this many times two empty addon calls. */
const GOAL_VS_TWO_CALLS = 1.5

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

/**
 * CPU ns per iteration of `a` and of `b`, measured in alternating rounds (fastest of
 * ROUNDS each): a shared machine slows both sides of the comparison alike, and CPU time
 * leaves out the time the process waits for a core.
 */
function measurePairCpu(a, b, n = ITERS) {
  a(Math.min(n, 100_000))
  b(Math.min(n, 100_000))
  const best = [Infinity, Infinity]
  for (let r = 0; r < ROUNDS; r++) {
    ;[a, b].forEach((fn, i) => {
      const t0 = process.cpuUsage()
      fn(n)
      const t = process.cpuUsage(t0)
      best[i] = Math.min(best[i], ((t.user + t.system) * 1000) / n)
    })
  }
  return best
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
  // The same Choice objects, made without PeerList.choose's bookkeeping for the finalizer
  // (which choices outlive the loop's next check phase): what that bookkeeping costs a choose.
  ['round-robin `_native.choose0` + `new Choice` + `finish()` (no finalizer bookkeeping)', (n) => { const id = rr._id; const names = rr._names; for (let i = 0; i < n; i++) { const t = _native.choose0(id); const c = new Choice(rr, t, names[(t / 2 ** 37) >>> 0]); sink += c.peer.length; c.finish() } }],
  ['empty plain N-API call: `_native.noopRaw()`', (n) => { for (let i = 0; i < n; i++) _native.noopRaw() }],
  ['round-robin raw `_native.choose0(id)` + `_native.finish0(id, token)` (no JS Choice)', (n) => { const id = rr._id; const { choose0, finish0 } = _native; for (let i = 0; i < n; i++) finish0(id, choose0(id)) }],
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

// ---- peerlb vs hashring and load-balancers, 100 peers --------------------------------

const HashRing = require('hashring')
const { P2cBalancer, RandomBalancer } = require('load-balancers')

const PEERS = Array.from({ length: 100 }, (_, i) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:11211`)
/** The same 4096 keys as the Rust and Python benchmarks; hashring's LRU cache (5000) holds them all. */
const KEYS = Array.from({ length: 4096 }, (_, i) => `user:${i}`)
/** More distinct keys than hashring's cache holds: cycling through them, every get misses it. */
const MANY_KEYS = Array.from({ length: 65536 }, (_, i) => `user:${i}`)
const COMPARE_ITERS = Math.min(ITERS, 500_000)
const GOAL_VS_HASHRING = 2

function list100(strategy) {
  const l = new PeerList({ strategy, seed: 1 })
  l.update({ add: PEERS })
  l.start()
  return l
}

const ringList = list100('hash-ring')
const fastRingList = list100('hash-ring:fast')
const rr100 = list100('round-robin')
const p2c100 = list100('two-random-choices')
const hashring = new HashRing(PEERS)
const random = new RandomBalancer(PEERS.length)
const p2cBalancer = new P2cBalancer(PEERS.length)

function peerlbRing(keys, l = ringList) {
  const mask = keys.length - 1
  return (n) => { for (let i = 0; i < n; i++) { const c = l.choose({ shardKey: keys[i & mask] }); sink += c.peer.length; c.finish() } }
}
function hashringGet(keys) {
  const mask = keys.length - 1
  return (n) => { for (let i = 0; i < n; i++) sink += hashring.get(keys[i & mask]).length }
}
function peerlbPick(l) {
  return (n) => { for (let i = 0; i < n; i++) { const c = l.choose(); sink += c.peer.length; c.finish() } }
}
function balancerPick(b) {
  return (n) => { for (let i = 0; i < n; i++) sink += PEERS[b.pick()].length }
}

// [peerlb case, other case, goal]
const pairs = [
  [['peerlb hash-ring (ketama) `choose({shardKey})` + `finish()`, 4096 keys', peerlbRing(KEYS)],
    ['hashring `.get(key)`, 4096 keys (all hit its LRU cache)', hashringGet(KEYS)], GOAL_VS_HASHRING],
  [['peerlb hash-ring (ketama) `choose({shardKey})` + `finish()`, 65536 keys', peerlbRing(MANY_KEYS)],
    ['hashring `.get(key)`, 65536 keys (all miss its LRU cache)', hashringGet(MANY_KEYS)], GOAL_VS_HASHRING],
  [['peerlb hash-ring:fast (xxh3, not ketama) `choose({shardKey})` + `finish()`, 65536 keys', peerlbRing(MANY_KEYS, fastRingList)],
    ['hashring `.get(key)`, 65536 keys (all miss its LRU cache)', hashringGet(MANY_KEYS)], null],
  [['peerlb round-robin `choose()` + `finish()`', peerlbPick(rr100)],
    ['load-balancers `RandomBalancer.pick()`', balancerPick(random)], null],
  [['peerlb two-random-choices `choose()` + `finish()`', peerlbPick(p2c100)],
    ['load-balancers `P2cBalancer.pick()`', balancerPick(p2cBalancer)], null],
]

/** [keys where peerlb's ring and hashring agree, keys checked]. */
function agreement() {
  let same = 0
  for (const k of KEYS) {
    const c = ringList.choose({ shardKey: k })
    if (c.peer === hashring.get(k)) same++
    c.finish()
  }
  return [same, KEYS.length]
}

const measured = new Map() // a case in two rows is measured once
function measureOnce(name, fn) {
  if (!measured.has(name)) measured.set(name, measure(fn, COMPARE_ITERS))
  return measured.get(name)
}
const compared = pairs.map(([[ours, oursFn], [theirs, theirsFn], goal]) => {
  const oursNs = measureOnce(ours, oursFn)
  const theirsNs = measureOnce(theirs, theirsFn)
  console.log(`${ours.padEnd(60)} ${oursNs.toFixed(1).padStart(8)} ns\n${theirs.padEnd(60)} ${theirsNs.toFixed(1).padStart(8)} ns  speed-up ${(theirsNs / oursNs).toFixed(2)}x (above 1: peerlb faster)`)
  return { ours, oursNs, theirs, theirsNs, goal }
})
const [same, total] = agreement()

function compareMarkdown() {
  return [
    '',
    `## Node: peerlb vs hashring and load-balancers (${PEERS.length} peers)`,
    '',
    `Fastest of ${ROUNDS} rounds of ${COMPARE_ITERS} ops, the two sides of a row measured one after the other in this run. ` +
      'peerlb\'s op also starts and finishes a request (pending counts); the others only pick. ' +
      '`hashring` 3.2 caches key → server in an LRU of 5000 entries by default, so it is measured once with keys that fit ' +
      'and once with more distinct keys than fit. Ketama hashes each key with MD5 on both sides (about 100 ns of peerlb\'s op); ' +
      'hash-ring:fast uses xxh3 and maps keys differently. Speed-up = the other package\'s ns ÷ peerlb\'s (above 1: peerlb is faster).',
    '',
    '| peerlb | ns/op | compared with | ns/op | speed-up | goal |',
    '|---|---:|---|---:|---:|---:|',
    ...compared.map((c) => `| ${c.ours} | ${c.oursNs.toFixed(1)} | ${c.theirs} | ${c.theirsNs.toFixed(1)} | ` +
      `**${(c.theirsNs / c.oursNs).toFixed(2)}x** | ${c.goal ? `>= ${c.goal}x` : '–'} |`),
    '',
    `Same owner as hashring on ${same} of ${total} keys` + (same === total ? ' (all).' : ' — **they disagree**.'),
    '',
  ].join('\n')
}

function compareJson() {
  return compared.map((c) => ({
    surface: 'Node',
    peerlb: c.ours,
    peerlb_ns: c.oursNs,
    other: c.theirs,
    other_ns: c.theirsNs,
    goal: c.goal,
    baseline: 'empty addon call',
    baseline_ns: base,
  }))
}

/**
 * ns per choice: batches of 1000 choices finished after a turn of the event loop (so each is
 * registered with the finalizer at the end of its turn, then unregistered by finish), or in
 * the same turn (never registered). Both include the turn; the turn's own cost (an empty
 * batch) is subtracted.
 */
async function batchCase(acrossTurn, size = 1000) {
  const batches = 200
  const held = new Array(size)
  let best = Infinity
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint()
    for (let b = 0; b < batches; b++) {
      for (let i = 0; i < size; i++) held[i] = rr.choose()
      if (acrossTurn) await new Promise((resolve) => setImmediate(resolve))
      for (let i = 0; i < size; i++) held[i].finish()
      if (!acrossTurn) await new Promise((resolve) => setImmediate(resolve))
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0))
  }
  return best / (batches * Math.max(size, 1))
}

async function turnCost() {
  return (await batchCase(false, 0)) / 1000
}

asyncCase().then(async (ns) => {
  const name = 'round-robin `await chooseAsync()` + `finish()` (fast path)'
  rows.push([name, ns])
  console.log(`${name.padEnd(60)} ${ns.toFixed(1).padStart(8)} ns  ${(ns / base).toFixed(2)}x`)
  const turn = await turnCost()
  for (const [label, across] of [
    ['round-robin 1000 × `choose()`, then 1000 × `finish()` in the same turn', false],
    ['round-robin 1000 × `choose()`, a turn of the event loop (finalizer registration), then 1000 × `finish()`', true],
  ]) {
    const v = (await batchCase(across)) - turn
    rows.push([label, v])
    console.log(`${label.padEnd(60)} ${v.toFixed(1).padStart(8)} ns  ${(v / base).toFixed(2)}x`)
  }
  const ratio = rows[2][1] / base
  // The target: round-robin choose + finish <= 1.5x two empty addon calls, in CPU time,
  // the two measured in alternating rounds.
  const [twoEmpty, chooseFinish] = measurePairCpu(cases[1][1], cases[2][1])
  const [rawEmpty, rawPair] = measurePairCpu(cases[4][1], cases[5][1])
  const vsTwo = chooseFinish / twoEmpty
  const met = vsTwo <= GOAL_VS_TWO_CALLS
  const verdict = met
    ? 'met'
    : `**missed**: the native side takes ${(rawPair - 2 * rawEmpty).toFixed(1)} ns beyond two plain N-API calls ` +
      `(raw \`choose0\` + \`finish0\` ${rawPair.toFixed(1)} ns, plain empty call ${rawEmpty.toFixed(1)} ns: the core's ` +
      'choose + finish, the arguments\' conversions, and the token, a number above 2^31 that V8 allocates on its heap), ' +
      'the JS `Choice` ' + (chooseFinish - rawPair).toFixed(1) + ' ns'
  const md = [
    '# Node: choose + finish vs an empty addon call',
    '',
    `node ${process.version}, ${process.platform}-${process.arch}, 8 peers, fastest of ${ROUNDS} rounds of ${ITERS} calls` +
      ` (async: one round of 200000; batches: fastest of 3 rounds of 200 batches, less the cost of the turn itself).` +
      ' Goal: choose + finish <= 1.5x two empty calls. The finalizer (a choice garbage-collected unfinished is cancelled)' +
      ' costs a choose the difference between the two round-robin rows, and a choice that outlives a turn of the event loop the' +
      ' difference between the two batch rows.',
    '',
    '| case | ns/op | x empty call |',
    '|---|---:|---:|',
    ...rows.map(([name, v]) => `| ${name} | ${v.toFixed(1)} | ${(v / base).toFixed(2)} |`),
    '',
    `**round-robin choose + finish = ${ratio.toFixed(2)}x an empty call** ` +
      `(${rows[1][1] / base >= 1.5 ? 'two crossings of the boundary alone cost ' + (rows[1][1] / base).toFixed(2) + 'x' : ''}).`,
    '',
    '### Node hot-path target',
    '',
    '| target | measured | verdict |',
    '|---|---:|---|',
    `| round-robin \`choose()\` + \`finish()\` <= ${GOAL_VS_TWO_CALLS}x two empty addon calls (CPU ns/op, fastest of ${ROUNDS} alternating rounds) | ` +
      `${chooseFinish.toFixed(1)} / ${twoEmpty.toFixed(1)} ns = ${vsTwo.toFixed(2)}x | ${verdict} |`,
    compareMarkdown(),
  ].join('\n')
  if (out) {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true })
    fs.writeFileSync(out, md)
    const json = path.join(path.dirname(path.resolve(out)), 'node.compare.json')
    fs.writeFileSync(json, JSON.stringify(compareJson(), null, 1) + '\n')
    console.log(`wrote ${out} and ${json}`)
  }
  if (sink < 0) console.log(sink)
})
