// Replays every tests/conformance/*.json scenario (format: tests/conformance/README.md)
// against the Node API. `while_waiting` steps run from a setTimeout while a chooseAsync
// waits; `drop` abandons a held choice with `choice.release()` (its release path; a choice
// garbage-collected unfinished is cancelled too, see choice.test.js); a held name stays
// known after it was finished or dropped, so finishing it again is `already-finished`;
// `retry` runs `list.retry` with an async function playing the scripted attempts; `events`
// compares what `list.subscribe` delivered (events caused on the JS thread arrive before
// the call that caused them returns). Sessions open with `openSession` and fail over with
// `failover` (blocking; a wait there is short in every scenario) or, when the step has a
// timeout, with `openSessionAsync` / `failoverAsync`; `session_drop` closes the session
// (its release path; one garbage-collected unclosed is closed too, see sessions.test.js).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { PeerList, ManualClock, RetryBudget, RequestRule, declined, AdminResult, adminResultCodes, _native } = require('..')

const dir = path.resolve(__dirname, '../../../tests/conformance')
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
/** Fewer scenarios than this means the folder was not found whole (94 when this was written). */
const MIN_SCENARIOS = 90
let passed = 0

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
    return { failed: true, error: err }
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
    this.clock = null
    this.events = []
    this.budget = null
    this.sessions = new Map()
    this.sessionEvents = []
  }

  newList(ctx, step) {
    const opts = { shuffle: step.shuffle === undefined ? false : step.shuffle }
    if (step.capacity !== undefined) opts.capacity = step.capacity
    if (step.local_zone !== undefined) opts.localZone = step.local_zone
    if (step.min_cluster_size !== undefined) opts.minClusterSize = step.min_cluster_size
    if (step.overprovisioning_factor !== undefined) opts.overprovisioningFactor = step.overprovisioning_factor
    for (const s of this.sessions.values()) if (!s.closed) s.close()
    this.sessions.clear()
    if (step.seed !== undefined) opts.seed = step.seed
    if (step.fail_fast !== undefined) opts.failFast = step.fail_fast
    if (step.strategy !== undefined) opts.strategy = step.strategy
    if (step.name !== undefined) opts.name = step.name
    if (step.max_pending !== undefined) opts.maxPending = step.max_pending
    if (step.max_pending_per_peer !== undefined) opts.maxPendingPerPeer = step.max_pending_per_peer
    if (step.metrics !== undefined) opts.metrics = step.metrics
    if (step.peer_labels !== undefined) opts.peerLabels = step.peer_labels
    this.clock = null
    this.budget = null
    if (step.clock === 'manual') {
      this.clock = new ManualClock()
      opts.clock = this.clock
    } else if (step.clock !== undefined && step.clock !== 'real') {
      throw new Error(`${ctx}: unknown clock ${JSON.stringify(step.clock)}`)
    }
    if (step.ejection === false) {
      opts.ejection = false
    } else if (step.ejection !== undefined && step.ejection !== true) {
      const names = { failures: 'failures', base_ms: 'baseMs', max_ms: 'maxMs', max_percent: 'maxPercent', panic_percent: 'panicPercent' }
      opts.ejection = {}
      for (const [k, v] of Object.entries(step.ejection)) {
        assert.ok(names[k], `${ctx}: unknown ejection option ${k}`)
        opts.ejection[names[k]] = v
      }
    }
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
    this.events = []
    this.sessionEvents = []
    if (this.list) {
      this.list.subscribe((e) => this.events.push(`${e.kind} ${e.peer}`))
      this.list.subscribeSessions((e) => this.sessionEvents.push(`${e.kind} ${e.session} ${e.peer}`))
    }
  }

  afterChoose(ctx, step, choice) {
    if (step.expect !== undefined) assert.equal(choice.peer, step.expect, `${ctx}: chose the wrong peer`)
    if (step.expect_one_of) assert.ok(step.expect_one_of.includes(choice.peer), `${ctx}: ${choice.peer}`)
    if (step.hold) this.held.set(step.hold, choice)
    else choice.finish(step.outcome || 'ok')
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
      c.finish(step.outcome || 'ok')
    }
    if (step.expect) assert.deepEqual(got, step.expect, `${ctx}: order`)
    const counts = {}
    for (const p of got) counts[p] = (counts[p] || 0) + 1
    if (step.expect_counts) assert.deepEqual(counts, step.expect_counts, `${ctx}: counts`)
    if (step.expect_only) {
      for (const p of Object.keys(counts)) assert.ok(step.expect_only.includes(p), `${ctx}: chose ${p}`)
    }
    if (step.expect_all) {
      for (const p of Object.keys(counts)) assert.ok(step.expect_all.includes(p), `${ctx}: chose ${p}`)
      for (const p of step.expect_all) assert.ok(counts[p] > 0, `${ctx}: never chose ${p} (${JSON.stringify(counts)})`)
    }
  }

  listBackends(ctx, step) {
    const got = this.list.listBackends()
    assert.equal(got.length, step.expect.length, `${ctx}: backend count in ${JSON.stringify(got)}`)
    step.expect.forEach((want, i) => {
      for (const [k, v] of Object.entries(want)) {
        assert.deepEqual(got[i][k], v, `${ctx}: backend field ${k} in ${JSON.stringify(got[i])}`)
      }
    })
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
        // A name stays known after its choice was finished or dropped.
        const c = this.held.get(step.choice)
        assert.ok(c, `${ctx}: no held choice ${step.choice}`)
        // A load report: ORCA text as text, fields as the typed object.
        const load =
          step.load && typeof step.load === 'object'
            ? {
                requestsInFlight: step.load.requests_in_flight,
                utilization: step.load.utilization,
                qps: step.load.qps,
                eps: step.load.eps,
              }
            : step.load
        const r = check(ctx, step, () => c.finish(step.outcome || 'ok', step.latency_ms, load))
        if (!r.failed) assert.equal(r.value, true, `${ctx}: finish result`)
        return
      }
      case 'drop': {
        const c = this.held.get(step.choice)
        assert.ok(c, `${ctx}: no held choice ${step.choice}`)
        assert.equal(c.finished, false, `${ctx}: dropping a finished choice`)
        c.release()
        return
      }
      case 'list_backends':
        return this.listBackends(ctx, step)
      case 'metrics': {
        const text = this.list.metrics()
        const lines = text.split('\n')
        for (const want of step.contains || []) assert.ok(lines.includes(want), `${ctx}: no line ${want} in\n${text}`)
        for (const absent of step.absent || []) assert.ok(!text.includes(absent), `${ctx}: ${absent} in\n${text}`)
        if (step.empty) assert.equal(text, '', `${ctx}: metrics should be empty`)
        return
      }
      case 'introspect':
        return this.introspect(ctx, step)
      case 'advance':
        assert.ok(this.clock, `${ctx}: advance needs clock: manual`)
        return this.clock.advance(step.ms)
      case 'admin':
        return this.admin(ctx, step)
      case 'events': {
        const got = this.events.splice(0)
        assert.deepEqual(got, step.expect || [], `${ctx}: events`)
        return
      }
      case 'retry_budget': {
        // Only what the step gives: the core applies its defaults to the rest.
        const opts = { ratio: step.ratio, minPerSec: step.min_per_sec, ttlMs: step.ttl_ms, clock: this.clock || 'real' }
        const r = check(ctx, step, () => new RetryBudget(opts))
        this.budget = r.failed ? null : r.value
        return
      }
      case 'retry':
        return this.retry(ctx, step)
      case 'request':
        return this.request(ctx, step)
      case 'open_session':
        return this.openSession(ctx, step)
      case 'session_failover':
        return this.sessionFailover(ctx, step)
      case 'session_ok':
        return check(ctx, step, () => this.session(ctx, step).ok())
      case 'session_decline': {
        const s = this.session(ctx, step)
        let error
        try {
          error = s.decline(step.reason, step.remote_code === undefined ? undefined : { remoteCode: step.remote_code })
        } catch (err) {
          error = err
        }
        assert.ok(error instanceof Error, `${ctx}: decline gave ${error}`)
        assert.equal(error.code, nodeCode(step.expect_code), `${ctx}: decline's code (${error.message})`)
        this.remote(ctx, step, error)
        return
      }
      case 'session_close':
        return check(ctx, step, () => this.session(ctx, step).close())
      case 'session_drop': {
        const s = this.session(ctx, step)
        this.sessions.delete(step.session)
        s.close()
        return
      }
      case 'session_check': {
        const s = this.session(ctx, step)
        const got = { id: s.id, peer: s.peer, bound: s.bound, open: !s.closed, failover_requested: s.failoverRequested }
        for (const [k, v] of Object.entries(step.expect)) assert.deepEqual(got[k], v, `${ctx}: session field ${k} in ${JSON.stringify(got)}`)
        return
      }
      case 'session_events': {
        const got = this.sessionEvents.splice(0)
        assert.deepEqual(got, step.expect || [], `${ctx}: session events`)
        return
      }
      case 'add_backend': {
        const answer = JSON.parse(this.list.addBackend(step.data))
        for (const [k, v] of Object.entries(step.expect)) assert.deepEqual(answer[k], v, `${ctx}: add_backend field ${k} in ${JSON.stringify(answer)}`)
        return
      }
      case 'backend_config': {
        const r = check(ctx, step, () => this.list.backendConfig(step.peer))
        if (!r.failed) {
          const config = JSON.parse(r.value)
          for (const [k, v] of Object.entries(step.expect)) assert.deepEqual(config[k], v, `${ctx}: backend_config field ${k}`)
        }
        return
      }
      case 'queries':
        return this.queries(ctx, step)
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

Run.prototype.admin = function admin(ctx, step) {
  const want = step.expect || 'success'
  // Both forms: the named method (throws when failed) and admin() (returns the status).
  let got
  let error
  try {
    got = this.list[step.action](step.peer)
  } catch (err) {
    got = 'failed'
    error = err
  }
  assert.equal(got, want, `${ctx}: admin result (${error && error.message})`)
  // The balancer's numbers: 1 success, 3 no action required, 4 failed.
  const number = { success: AdminResult.SUCCESS, 'no-action-required': AdminResult.NO_ACTION_REQUIRED, failed: AdminResult.FAILED }[want]
  assert.deepEqual([AdminResult.SUCCESS, AdminResult.NO_ACTION_REQUIRED, AdminResult.FAILED], [1, 3, 4])
  assert.equal(adminResultCodes[got], number, `${ctx}: the number of ${got}`)
  if (error) {
    assert.ok(error instanceof Error, `${ctx}: not an Error`)
    if (step.error) assert.equal(error.code, nodeCode(step.error), `${ctx}: admin error code (${error.message})`)
    const again = this.list.admin(step.action, step.peer)
    assert.equal(again.status, 'failed', `${ctx}: admin() status`)
    assert.equal(again.result, number, `${ctx}: admin() result number`)
    assert.equal(again.code, error.code, `${ctx}: admin() code`)
    assert.equal(again.message, error.message, `${ctx}: admin() message`)
  }
}

// `request`: one request under a request rule, its attempts' results scripted.
Run.prototype.request = async function request(ctx, step) {
  const given = step.rule || {}
  const opts = {
    failureStatuses: given.failure_statuses,
    maxAttempts: given.max_attempts,
    retryAnyMethod: given.retry_any_method,
  }
  if (given.budget === false) opts.budget = false
  if (given.budget === 'shared') {
    assert.ok(this.budget, `${ctx}: a retry_budget step first`)
    opts.budget = this.budget
  }
  const r = check(ctx, step, () => new RequestRule(opts))
  if (r.failed) return
  const call = new _native.NativeRequestCall(
    r.value,
    this.list,
    step.method ?? 'GET',
    step.body_replayable ?? true,
    step.idempotent ?? null,
  )
  step.attempts.forEach((attempt, i) => {
    const actx = `${ctx}: attempt ${i + 1}`
    const chosen = call.choose()
    assert.ok(!(chosen instanceof Promise), `${actx}: a peer was available`)
    if (attempt.expect !== undefined) assert.equal(chosen.peer, attempt.expect, `${actx}: peer`)
    const retry = call.report(attempt.status ?? null, attempt.result ?? null, attempt.classified ?? null)
    assert.equal(retry, attempt.retry ?? i + 1 < step.attempts.length, `${actx}: retry`)
    if (attempt.stopped !== undefined) assert.equal(call.stopped, attempt.stopped, `${actx}: stop reason`)
  })
  assert.equal(call.attempts, step.attempts.length, `${ctx}: attempts`)
}

Run.prototype.retry = async function retry(ctx, step) {
  const script = step.attempts || []
  const peers = []
  const opts = { maxAttempts: step.max_attempts }
  if (step.timeout_ms !== undefined) opts.timeoutMs = step.timeout_ms
  if (step.shard_key !== undefined) opts.shardKey = step.shard_key
  if (this.budget) opts.budget = this.budget
  const thrown = []
  const r = await checkAsync(
    ctx,
    step,
    this.list.retry(async (peer, attempt) => {
      peers.push(peer)
      assert.equal(attempt, peers.length, `${ctx}: attempt number`)
      const what = script[peers.length - 1]
      assert.ok(what !== undefined, `${ctx}: attempt ${peers.length} is not scripted`)
      if (what === 'ok') return `done by ${peer}`
      const colon = what.indexOf(':')
      const [head, msg] = [what.slice(0, colon), what.slice(colon + 1)]
      const [kind, code] = head.split('@')
      const remoteCode = code === undefined ? undefined : Number(code)
      let err = null
      if (kind === 'declined') err = declined(msg, { remoteCode })
      if (kind === 'failure') {
        err = new Error(msg)
        if (remoteCode !== undefined) err.remoteCode = remoteCode
      }
      assert.ok(err, `${ctx}: bad scripted attempt ${what}`)
      thrown.push(err)
      throw err
    }, opts),
  )
  if (step.expect_peers) assert.deepEqual(peers, step.expect_peers, `${ctx}: attempts' peers`)
  if (step.expect_attempts !== undefined) assert.equal(peers.length, step.expect_attempts, `${ctx}: attempts`)
  if (step.expect_distinct) assert.equal(new Set(peers).size, peers.length, `${ctx}: peers not distinct: ${peers}`)
  if (r.failed) {
    this.remote(ctx, step, r.error)
    if (step.message !== undefined) assert.equal(r.error.message, step.message, `${ctx}: retry error message`)
    assert.equal(r.error.cause, thrown[thrown.length - 1], `${ctx}: cause is the last attempt's error`)
  } else {
    assert.equal(r.value, `done by ${peers[peers.length - 1]}`, `${ctx}: resolved value`)
  }
}

Run.prototype.remote = function remote(ctx, step, error) {
  if (step.expect_peer !== undefined) assert.equal(error.peer, step.expect_peer, `${ctx}: error's peer (${error.message})`)
  if (step.expect_remote_code !== undefined) assert.equal(error.remoteCode, step.expect_remote_code, `${ctx}: error's remote code (${error.message})`)
}

Run.prototype.session = function session(ctx, step) {
  const s = this.sessions.get(step.session)
  assert.ok(s, `${ctx}: no session ${step.session}`)
  return s
}

Run.prototype.openSession = async function openSession(ctx, step) {
  const opts = {}
  if (step.timeout_ms !== undefined) opts.timeoutMs = step.timeout_ms
  if (step.shard_key !== undefined) opts.shardKey = step.shard_key
  const r = step.timeout_ms === undefined ? check(ctx, step, () => this.list.openSession(opts)) : await checkAsync(ctx, step, this.list.openSessionAsync(opts))
  if (r.failed) return
  const s = r.value
  if (step.expect !== undefined) assert.equal(s.peer, step.expect, `${ctx}: opened on the wrong peer`)
  if (step.expect_one_of) assert.ok(step.expect_one_of.includes(s.peer), `${ctx}: ${s.peer}`)
  if (step.expect_id !== undefined) assert.equal(s.id, step.expect_id, `${ctx}: session id`)
  this.sessions.set(step.name, s)
}

Run.prototype.sessionFailover = async function sessionFailover(ctx, step) {
  const s = this.session(ctx, step)
  const opts = {}
  if (step.timeout_ms !== undefined) opts.timeoutMs = step.timeout_ms
  if (step.remote_code !== undefined) opts.remoteCode = step.remote_code
  let failed
  const attempt = async () => {
    try {
      return step.timeout_ms === undefined ? s.failover(step.reason, opts) : await s.failoverAsync(step.reason, opts)
    } catch (err) {
      failed = err
      throw err
    }
  }
  const r = await checkAsync(ctx, step, attempt())
  if (failed) this.remote(ctx, step, failed)
  if (r.failed) return
  assert.equal(r.value, s.peer, `${ctx}: failover's answer and session.peer`)
  if (step.expect !== undefined) assert.equal(r.value, step.expect, `${ctx}: failed over to the wrong peer`)
  if (step.expect_one_of) assert.ok(step.expect_one_of.includes(r.value), `${ctx}: ${r.value}`)
}

Run.prototype.queries = function queries(ctx, step) {
  const list = this.list
  if (step.capacity !== undefined) assert.equal(list.capacity, step.capacity, `${ctx}: capacity`)
  for (const [id, want] of Object.entries(step.available || {})) assert.equal(list.available(id), want, `${ctx}: available(${id})`)
  for (const [id, want] of Object.entries(step.uninitialized || {})) assert.equal(list.uninitialized(id), want, `${ctx}: uninitialized(${id})`)
  if (step.num_available !== undefined) assert.equal(list.numAvailable(), step.num_available, `${ctx}: numAvailable()`)
  if (step.num_unavailable !== undefined) assert.equal(list.numUnavailable(), step.num_unavailable, `${ctx}: numUnavailable()`)
  if (step.num_uninitialized !== undefined) assert.equal(list.numUninitialized(), step.num_uninitialized, `${ctx}: numUninitialized()`)
  if (step.peers !== undefined) assert.deepEqual(list.peers(), step.peers, `${ctx}: peers()`)
}

test('there are conformance scenarios', () => {
  assert.ok(files.length >= MIN_SCENARIOS, `expected at least ${MIN_SCENARIOS} scenarios in ${dir}, found ${files.length}`)
})

test.after(() => {
  // Every scenario ran to its last step (a runner that skipped some would pass otherwise).
  assert.equal(passed, files.length, `${passed} of ${files.length} scenarios passed`)
  console.log(`conformance: ${passed} scenarios passed`)
})

for (const file of files) {
  test(`conformance: ${file}`, async () => {
    const scenario = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))
    const run = new Run(file)
    assert.ok(Array.isArray(scenario.steps) && scenario.steps.length > 0, `${file}: no steps`)
    for (const [i, step] of scenario.steps.entries()) {
      await run.step(`step ${i}`, step)
    }
    passed++
  })
}
