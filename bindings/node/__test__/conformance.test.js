// Replays every tests/conformance/*.json scenario (format: tests/conformance/README.md)
// against the Node API. `while_waiting` steps run from a setTimeout while a chooseAsync
// waits; `drop` abandons a held choice with `choice.cancel()` (JS has no destructors).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { PeerList } = require('..')

const dir = path.resolve(__dirname, '../../../tests/conformance')
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()

const nodeCode = (kebab) => 'PEERLB_' + kebab.toUpperCase().replace(/-/g, '_')

class Scripted {
  constructor(spec) {
    this.name = 'scripted'
    this.initial = spec.initial_status === undefined ? 'available' : spec.initial_status
    this.failRetain = spec.fail_retain || []
    this.failRelease = spec.fail_release || []
    this.calls = []
    this.subscribers = new Map()
  }

  retain(id, subscriber) {
    this.calls.push(`retain ${id}`)
    if (this.failRetain.includes(id)) throw new Error(`scripted failure retaining ${id}`)
    this.subscribers.set(id, subscriber)
    if (this.initial !== null) subscriber.setStatus(this.initial)
  }

  release(id) {
    this.calls.push(`release ${id}`)
    if (this.failRelease.includes(id)) throw new Error(`scripted failure releasing ${id}`)
  }
}

function check(ctx, step, fn) {
  let value
  try {
    value = fn()
  } catch (err) {
    if (!step.error) throw new Error(`${ctx}: unexpected error ${err.code}: ${err.message}`)
    assert.ok(err instanceof Error, `${ctx}: not an Error`)
    assert.equal(err.code, nodeCode(step.error), `${ctx}: wrong code (${err.message})`)
    if (step.errors) {
      const got = (err.errors || [err]).map((e) => e.code)
      assert.deepEqual(got, step.errors.map(nodeCode), `${ctx}: individual errors`)
    }
    return { failed: true }
  }
  assert.ok(!step.error, `${ctx}: expected error ${step.error}, got success`)
  return { failed: false, value }
}

async function checkAsync(ctx, step, promise) {
  try {
    const value = await promise
    return check(ctx, step, () => value)
  } catch (err) {
    return check(ctx, step, () => {
      throw err
    })
  }
}

class Run {
  constructor(file) {
    this.file = file
    this.list = null
    this.transport = null
    this.held = new Map()
  }

  newList(ctx, step) {
    const opts = { shuffle: step.shuffle === undefined ? false : step.shuffle }
    if (step.seed !== undefined) opts.seed = step.seed
    if (step.fail_fast !== undefined) opts.failFast = step.fail_fast
    if (step.strategy !== undefined) opts.strategy = step.strategy
    this.transport = null
    const t = step.transport
    if (t === undefined || t === 'always-available') {
      // default
    } else if (t && t.kind === 'scripted') {
      this.transport = new Scripted(t)
      opts.transport = this.transport
    } else {
      throw new Error(`${ctx}: unknown transport ${JSON.stringify(t)}`)
    }
    const r = check(ctx, step, () => new PeerList(opts))
    this.list = r.failed ? null : r.value
    this.held.clear()
  }

  afterChoose(ctx, step, choice) {
    if (step.expect !== undefined) assert.equal(choice.peer, step.expect, `${ctx}: chose the wrong peer`)
    if (step.expect_one_of) assert.ok(step.expect_one_of.includes(choice.peer), `${ctx}: ${choice.peer}`)
    if (step.hold) this.held.set(step.hold, choice)
    else choice.finish('ok')
  }

  async choose(ctx, step) {
    const opts = {}
    if (step.timeout_ms !== undefined) opts.timeoutMs = step.timeout_ms
    if (step.shard_key !== undefined) opts.shardKey = step.shard_key
    let r
    if (step.while_waiting) {
      const pending = this.list.chooseAsync(opts)
      // Keep the rejection handled while the nested steps run.
      pending.catch(() => {})
      await new Promise((resolve, reject) =>
        setTimeout(() => {
          Promise.resolve()
            .then(async () => {
              for (const [i, inner] of step.while_waiting.entries()) {
                await this.step(`${ctx}.while_waiting[${i}]`, inner)
              }
            })
            .then(resolve, reject)
        }, 20),
      )
      r = await checkAsync(ctx, step, pending)
    } else {
      r = check(ctx, step, () => this.list.choose(opts))
    }
    if (!r.failed) this.afterChoose(ctx, step, r.value)
  }

  chooseMany(ctx, step) {
    const opts = step.timeout_ms === undefined ? undefined : { timeoutMs: step.timeout_ms }
    const got = []
    for (let i = 0; i < step.count; i++) {
      const c = this.list.choose(opts)
      got.push(c.peer)
      c.finish('ok')
    }
    if (step.expect) assert.deepEqual(got, step.expect, `${ctx}: order`)
    const counts = {}
    for (const p of got) counts[p] = (counts[p] || 0) + 1
    if (step.expect_counts) assert.deepEqual(counts, step.expect_counts, `${ctx}: counts`)
    if (step.expect_only) {
      for (const p of Object.keys(counts)) assert.ok(step.expect_only.includes(p), `${ctx}: chose ${p}`)
    }
  }

  introspect(ctx, step) {
    const got = this.list.introspect()
    for (const [key, value] of Object.entries(step.expect)) {
      if (key === 'peers') {
        assert.equal(got.peers.length, value.length, `${ctx}: peer count in ${JSON.stringify(got)}`)
        value.forEach((want, i) => {
          for (const [k, v] of Object.entries(want)) {
            assert.deepEqual(got.peers[i][k], v, `${ctx}: peer field ${k} in ${JSON.stringify(got.peers[i])}`)
          }
        })
      } else {
        assert.deepEqual(got[key], value, `${ctx}: field ${key} in ${JSON.stringify(got)}`)
      }
    }
  }

  async step(where, step) {
    const ctx = `${this.file}: ${where} (${step.op})`
    switch (step.op) {
      case 'new':
        return this.newList(ctx, step)
      case 'update':
        return check(ctx, step, () => this.list.update({ add: step.add || [], remove: step.remove || [] }))
      case 'start':
        return check(ctx, step, () => this.list.start())
      case 'stop':
        return check(ctx, step, () => this.list.stop())
      case 'set_status': {
        assert.ok(this.transport, `${ctx}: set_status needs the scripted transport`)
        const sub = this.transport.subscribers.get(step.peer)
        assert.ok(sub, `${ctx}: ${step.peer} was never retained`)
        const accepted = sub.setStatus(step.status)
        if (step.accepted !== undefined) assert.equal(accepted, step.accepted, `${ctx}: accepted`)
        return
      }
      case 'choose':
        return this.choose(ctx, step)
      case 'choose_many':
        return this.chooseMany(ctx, step)
      case 'finish': {
        const c = this.held.get(step.choice)
        assert.ok(c, `${ctx}: no held choice ${step.choice}`)
        this.held.delete(step.choice)
        assert.equal(c.finish(step.outcome || 'ok', step.latency_ms), true)
        return
      }
      case 'drop': {
        const c = this.held.get(step.choice)
        assert.ok(c, `${ctx}: no held choice ${step.choice}`)
        this.held.delete(step.choice)
        c.cancel()
        return
      }
      case 'introspect':
        return this.introspect(ctx, step)
      case 'transport_calls': {
        assert.ok(this.transport, `${ctx}: needs the scripted transport`)
        const got = this.transport.calls.splice(0)
        assert.deepEqual(got, step.expect || [], `${ctx}: transport calls`)
        return
      }
      default:
        throw new Error(`${ctx}: unknown op ${JSON.stringify(step.op)}`)
    }
  }
}

test('there are conformance scenarios', () => {
  assert.ok(files.length >= 40, `expected at least 40 scenarios, found ${files.length}`)
})

for (const file of files) {
  test(`conformance: ${file}`, async () => {
    const scenario = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))
    const run = new Run(file)
    for (const [i, step] of scenario.steps.entries()) {
      await run.step(`step ${i}`, step)
    }
  })
}
