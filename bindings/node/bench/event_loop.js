#!/usr/bin/env node
// How long the O(peers) calls hold the JS thread, sync and async, on large lists: the time a
// sync call takes, and for the async forms the time the call itself takes plus the longest
// the event loop was blocked until its Promise settled (perf_hooks.monitorEventLoopDelay).
//
//   node --expose-gc bench/event_loop.js [--peers 100000] [--start-peers 10000] [--rounds 3] [--out file.md]
//
// Each figure is the smallest of --rounds rounds (the machine is shared: the minimum is the
// least noisy).
//
// `start`/`stop` retain/release every peer through the core's change path; `--start-peers`
// sizes the list used for them separately, so a core whose change path is slow at 100 000
// peers can still be measured at the size it handles.
'use strict'

const fs = require('node:fs')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { PeerList } = require('..')

const argv = process.argv
const arg = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt)
const PEERS = Number(arg('--peers', 100000))
const START_PEERS = Number(arg('--start-peers', 10000))
const ROUNDS = Number(arg('--rounds', 3))
const out = arg('--out', null)

const ids = (n, tag) => Array.from({ length: n }, (_, i) => `10.${tag}.${(i >> 8) & 255}.${i & 255}:${8000 + (i >> 16)}`)
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

/** Collects garbage between measurements (with --expose-gc), so that one's GC is not another's. */
const settle = () => {
  if (global.gc) global.gc()
}

function sync(label, f) {
  settle()
  const t0 = process.hrtime.bigint()
  f()
  return { label, call: ms(t0) }
}

/** The async form: the synchronous part of the call, the whole wait, the longest block of the loop. */
async function async(label, f) {
  settle()
  const h = monitorEventLoopDelay({ resolution: 1 })
  const ping = setInterval(() => {}, 1) // keeps the loop turning so that a block shows
  h.enable()
  const t0 = process.hrtime.bigint()
  const p = f()
  const call = ms(t0)
  await p
  const total = ms(t0)
  h.disable()
  clearInterval(ping)
  // The histogram records the delay of a 1 ms timer: the longest block is about max - 1 ms.
  return { label, call, total, maxBlock: Math.max(0, h.max / 1e6 - 1) }
}

async function round() {
  const rows = []
  // What the machine itself adds: the longest "block" while nothing runs on the JS thread.
  rows.push(await async('nothing: a 500 ms timer (the noise floor of this machine)', () => new Promise((r) => setTimeout(r, 500))))
  const big = new PeerList({ shuffle: false })
  const add = ids(PEERS, 1)
  rows.push(sync(`update: add ${PEERS} ids to an idle list`, () => big.update({ add })))
  rows.push(sync(`introspect() of ${PEERS}`, () => big.introspect()))
  rows.push(sync(`listBackends() of ${PEERS}`, () => big.listBackends()))
  rows.push(await async(`introspectAsync() of ${PEERS}`, () => big.introspectAsync()))
  const ids2 = ids(PEERS, 2)
  rows.push(await async(`updateAsync: add ${PEERS} ids to an idle list`, () => new PeerList().updateAsync({ add: ids2 })))
  const objects = ids(PEERS, 4).map((id, i) => ({ id, weight: 1 + (i % 3) }))
  rows.push(await async(`updateAsync: add ${PEERS} {id, weight} to an idle list`, () => new PeerList().updateAsync({ add: objects })))

  const s = new PeerList({ shuffle: false })
  s.update({ add: ids(START_PEERS, 3) })
  rows.push(sync(`start() with ${START_PEERS}`, () => s.start()))
  rows.push(sync(`stop() with ${START_PEERS}`, () => s.stop()))
  rows.push(await async(`startAsync() with ${START_PEERS}`, () => s.startAsync()))
  rows.push(await async(`stopAsync() with ${START_PEERS}`, () => s.stopAsync()))

  // Churn on a running list: half the peers replaced in one call (sync, then async).
  const half = Math.floor(START_PEERS / 2)
  const running = new PeerList({ shuffle: false })
  running.update({ add: ids(START_PEERS, 5) })
  running.start()
  const swap = (from, to) => ({ remove: ids(START_PEERS, from).slice(0, half), add: ids(START_PEERS, to).slice(0, half) })
  let change = swap(5, 6)
  rows.push(sync(`update: remove ${half} and add ${half} on a running list of ${START_PEERS}`, () => running.update(change)))
  change = swap(6, 7)
  rows.push(await async(`updateAsync: remove ${half} and add ${half} on a running list of ${START_PEERS}`, () => running.updateAsync(change)))

  return rows
}

async function main() {
  let rows = null
  for (let r = 0; r < ROUNDS; r++) {
    const next = await round()
    rows =
      rows === null
        ? next
        : rows.map((row, i) => {
            const min = (k) => (row[k] === undefined ? undefined : Math.min(row[k], next[i][k]))
            return { label: row.label, call: min('call'), total: min('total'), maxBlock: min('maxBlock') }
          })
  }
  const lines = [
    `# Node: how long the O(peers) calls hold the JS thread`,
    '',
    `node ${process.version}; ${PEERS} peers (start/stop/churn: ${START_PEERS}); always-available transport;` +
      ` each figure the smallest of ${ROUNDS} rounds.`,
    '',
    '| call | JS thread in the call (ms) | until settled (ms) | longest event-loop block while pending (ms) |',
    '|---|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.label} | ${r.call.toFixed(1)} | ${r.total === undefined ? '–' : r.total.toFixed(1)} | ${r.maxBlock === undefined ? '–' : r.maxBlock.toFixed(1)} |`,
    ),
    '',
  ]
  console.log(lines.join('\n'))
  if (out) fs.writeFileSync(out, lines.join('\n'))
}

main()
