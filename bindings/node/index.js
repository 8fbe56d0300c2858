// peerlb for Node: client-side load balancing over the Rust core (a napi-rs addon).
//
// This file is the public API. It checks argument types (wrong types are TypeErrors), turns
// options objects into the addon's positional arguments, and builds `Choice` objects in JS,
// which keeps a `choose` + `finish` at two cheap calls into the addon. All balancing logic
// lives in the Rust core; see README.md.
'use strict'

const path = require('node:path')
const { performance } = require('node:perf_hooks')

function loadNative() {
  const file = process.env.PEERLB_NODE_ADDON || path.join(__dirname, 'peerlb.node')
  try {
    return require(file)
  } catch (err) {
    const e = new Error(
      `peerlb: cannot load the native addon ${file} (${err.message}); ` +
        'build it with `npm run build` in the package folder (needs cargo)',
    )
    e.code = 'PEERLB_ADDON_NOT_BUILT'
    e.cause = err
    throw e
  }
}

const native = loadNative()

const SPAN = 4294967296 // a native choice is `slot + peerIndex * 2^32`
const { choose0, choose, chooseAsync, finish } = native
const hasDispose = typeof Symbol.dispose === 'symbol'

function typeError(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_ARG_TYPE'
  return e
}

function invalidArgument(message) {
  const e = new Error(`invalid argument: ${message}`)
  e.code = 'PEERLB_INVALID_ARGUMENT'
  return e
}

function describe(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`
}

function outcomeCode(outcome) {
  switch (outcome) {
    case undefined:
    case 'ok':
      return 0
    case 'failure':
      return 1
    case 'declined':
      return 2
    case 'cancelled':
      return 3
    default:
      if (typeof outcome !== 'string') {
        throw typeError(`finish(outcome): outcome must be a string, got ${describe(outcome)}`)
      }
      throw invalidArgument(
        `unknown outcome ${JSON.stringify(outcome)}; expected "ok", "failure", "declined" or "cancelled"`,
      )
  }
}

function timeoutArg(what, timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null) return -1
  if (typeof timeoutMs !== 'number') {
    throw typeError(`${what}: timeoutMs must be a number, got ${describe(timeoutMs)}`)
  }
  if (Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw invalidArgument(`${what}: timeoutMs must be >= 0, got ${timeoutMs}`)
  }
  return timeoutMs
}

function shardKeyArg(what, key) {
  if (key === undefined || key === null) return undefined
  if (typeof key === 'string' || key instanceof Uint8Array) return key
  throw typeError(`${what}: shardKey must be a string or a Uint8Array/Buffer, got ${describe(key)}`)
}

function optionsObject(what, opts) {
  if (opts === undefined || opts === null) return {}
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw typeError(`${what}: options must be an object, got ${describe(opts)}`)
  }
  return opts
}

/**
 * A manual (test) clock for lists and retry budgets: it stands still until `advance(ms)`,
 * which also runs what came due (ejections end inside `advance`, and their `restored`
 * events reach subscribers before it returns). One clock may drive many lists.
 */
class ManualClock {
  constructor() {
    this._n = new native.NativeClock()
  }

  /** Moves the clock forward by `ms` (a finite number >= 0; fractions allowed). */
  advance(ms) {
    if (typeof ms !== 'number') throw typeError(`advance(ms): ms must be a number, got ${describe(ms)}`)
    if (!(ms >= 0) || ms === Infinity) throw invalidArgument(`advance(ms): ms must be a finite number >= 0, got ${ms}`)
    this._n.advance(ms)
  }

  /** How far it has been advanced in total, in milliseconds. */
  get elapsedMs() {
    return this._n.elapsedMs
  }
}

function clockArg(what, clock) {
  if (clock === undefined || clock === null || clock === 'real') return null
  if (clock instanceof ManualClock) return clock._n
  throw typeError(`${what}: clock must be a ManualClock or 'real', got ${describe(clock)}`)
}

// PeerList's `ejection` option names → the core's EjectionPolicy::set keys.
const EJECTION_KEYS = {
  failures: 'failures',
  baseMs: 'base_ms',
  maxMs: 'max_ms',
  maxPercent: 'max_percent',
  panicPercent: 'panic_percent',
}

/** `ejection` → [off, keys, values]; the core parses and checks the values. */
function ejectionArgs(ej) {
  if (ej === undefined || ej === null || ej === true) return [false, [], []]
  if (ej === false) return [true, [], []]
  if (typeof ej !== 'object' || Array.isArray(ej)) {
    throw typeError(`new PeerList: ejection must be false or an object, got ${describe(ej)}`)
  }
  const keys = []
  const values = []
  for (const [k, v] of Object.entries(ej)) {
    if (v === undefined) continue
    const key = Object.hasOwn(EJECTION_KEYS, k) ? EJECTION_KEYS[k] : undefined
    if (key === undefined) {
      throw invalidArgument(
        `unknown ejection option ${JSON.stringify(k)} (known: ${Object.keys(EJECTION_KEYS).join(', ')})`,
      )
    }
    if (typeof v !== 'number') throw typeError(`new PeerList: ejection.${k} must be a number, got ${describe(v)}`)
    keys.push(key)
    values.push(String(v))
  }
  return [false, keys, values]
}

function peerIdArg(what, id) {
  if (typeof id !== 'string') throw typeError(`${what}: peer id must be a string, got ${describe(id)}`)
  return id
}

/** Reports what an event subscriber threw (or rejected with) as a process warning. */
function subscriberFailed(err) {
  process.emitWarning(`a peerlb event subscriber threw: ${errorText(err)}`, {
    type: 'PeerlbWarning',
    code: 'PEERLB_SUBSCRIBER_THREW',
  })
}

/** The error to throw in a `retry` attempt to say the peer declined: no retry, no ejection. */
function declined(message) {
  const e = new Error(message === undefined ? 'declined' : String(message))
  e.code = 'PEERLB_DECLINED'
  return e
}

/**
 * A retry budget shared by `retry` calls: over a sliding window of `ttlMs`, retries may be
 * at most `minPerSec × ttl + ratio × calls` (Finagle's and Envoy's budget).
 */
class RetryBudget {
  /**
   * @param {object} [options]
   * @param {number} [options.ratio=0.2] retries per call (0..1)
   * @param {number} [options.minPerSec=10] retries per second always allowed
   * @param {number} [options.ttlMs=10000] window (1000..60000)
   * @param {ManualClock|'real'} [options.clock='real']
   */
  constructor(options) {
    const o = optionsObject('new RetryBudget(options)', options)
    const ratio = o.ratio === undefined ? 0.2 : o.ratio
    if (typeof ratio !== 'number') throw typeError(`new RetryBudget: ratio must be a number, got ${describe(ratio)}`)
    const minPerSec = o.minPerSec === undefined ? 10 : o.minPerSec
    if (typeof minPerSec !== 'number') {
      throw typeError(`new RetryBudget: minPerSec must be a number, got ${describe(minPerSec)}`)
    }
    if (!Number.isInteger(minPerSec) || minPerSec < 0 || minPerSec > 0xffffffff) {
      throw invalidArgument(`RetryBudget: minPerSec must be an integer in 0..2^32-1, got ${minPerSec}`)
    }
    const ttlMs = o.ttlMs === undefined ? 10000 : o.ttlMs
    if (typeof ttlMs !== 'number') throw typeError(`new RetryBudget: ttlMs must be a number, got ${describe(ttlMs)}`)
    this._n = new native.NativeRetryBudget(ratio, minPerSec, ttlMs, clockArg('new RetryBudget', o.clock))
  }

  /** Retries the budget would allow right now. */
  get balance() {
    return this._n.balance
  }
}

/**
 * A chosen peer. The request counts as pending on that peer until `finish` (or `cancel`).
 */
class Choice {
  constructor(list, slot, peer) {
    /** The chosen peer's id, e.g. "10.0.0.1:8080". */
    this.peer = peer
    // The PeerList (not just its id): an unfinished choice keeps its list alive, so the id
    // cannot be reused by another list before the choice is finished.
    this._list = list
    this._slot = slot
  }

  /** Whether the choice has been finished. */
  get finished() {
    return this._slot < 0
  }

  /**
   * Ends the request: `outcome` is 'ok' (default), 'failure', 'declined' or 'cancelled';
   * `latencyMs` is how long it took, if known. Returns true; a second call does nothing and
   * returns false.
   */
  finish(outcome, latencyMs) {
    const code = outcome === undefined ? 0 : outcomeCode(outcome)
    let latency = -1
    if (latencyMs !== undefined && latencyMs !== null) {
      if (typeof latencyMs !== 'number') {
        throw typeError(`finish(outcome, latencyMs): latencyMs must be a number, got ${describe(latencyMs)}`)
      }
      if (!(latencyMs >= 0) || latencyMs === Infinity) {
        throw invalidArgument(`finish: latencyMs must be a finite number >= 0, got ${latencyMs}`)
      }
      latency = latencyMs
    }
    const slot = this._slot
    if (slot < 0) return false
    this._slot = -1
    return finish(this._list._id, slot, code, latency)
  }

  /** Abandons the request: the same as `finish('cancelled')`. */
  cancel() {
    return this.finish('cancelled')
  }

  toString() {
    return `Choice(${this.peer}${this._slot < 0 ? ', finished' : ''})`
  }
}

if (hasDispose) {
  // `using choice = list.choose(...)` cancels the choice at scope exit unless it was finished.
  Object.defineProperty(Choice.prototype, Symbol.dispose, {
    value: function dispose() {
      if (this._slot >= 0) this.finish('cancelled')
    },
    writable: true,
    configurable: true,
  })
}

/**
 * A list of peers and a strategy to choose among the available ones.
 */
class PeerList {
  /**
   * @param {object} [options]
   * @param {string} [options.strategy='round-robin'] 'round-robin', 'random', 'fewest-pending', 'two-random-choices'
   * @param {boolean} [options.shuffle=true] shuffle peers as they are retained
   * @param {number|bigint} [options.seed] seed for shuffling and random strategies
   * @param {boolean} [options.failFast=false] choose fails at once instead of waiting
   * @param {string|object} [options.transport] a built-in transport spec ('always-available',
   *   'tcp-probe?interval_ms=200&timeout_ms=100') or a JS transport object with retain/release
   * @param {false|{failures?: number, baseMs?: number, maxMs?: number, maxPercent?: number, panicPercent?: number}} [options.ejection]
   *   outlier ejection (on by default: 5 failures in a row, 30 s × nth ejection up to 300 s,
   *   at most 10 % of the peers, panic below 50 % healthy); false turns it off
   * @param {ManualClock|'real'} [options.clock='real'] the clock for ejection times and strategies
   */
  constructor(options) {
    const o = optionsObject('new PeerList(options)', options)
    const strategy = o.strategy === undefined ? 'round-robin' : o.strategy
    if (typeof strategy !== 'string') {
      throw typeError(`new PeerList: strategy must be a string, got ${describe(strategy)}`)
    }
    const shuffle = o.shuffle === undefined ? true : o.shuffle
    if (typeof shuffle !== 'boolean') {
      throw typeError(`new PeerList: shuffle must be a boolean, got ${describe(shuffle)}`)
    }
    const failFast = o.failFast === undefined ? false : o.failFast
    if (typeof failFast !== 'boolean') {
      throw typeError(`new PeerList: failFast must be a boolean, got ${describe(failFast)}`)
    }
    let seed = ''
    if (o.seed !== undefined && o.seed !== null) {
      if (typeof o.seed === 'number') {
        if (!Number.isSafeInteger(o.seed) || o.seed < 0) {
          throw invalidArgument(`seed must be an integer in 0..2^53-1 (or a bigint), got ${o.seed}`)
        }
        seed = String(o.seed)
      } else if (typeof o.seed === 'bigint') {
        if (o.seed < 0n || o.seed >= 1n << 64n) throw invalidArgument(`seed must fit in 64 bits, got ${o.seed}`)
        seed = o.seed.toString()
      } else {
        throw typeError(`new PeerList: seed must be a number or a bigint, got ${describe(o.seed)}`)
      }
    }
    let transport = null
    let transportName = ''
    const t = o.transport
    if (t === undefined || t === null) {
      // the core's default transport
    } else if (typeof t === 'string') {
      // a built-in transport by spec ('always-available', 'tcp-probe?interval_ms=200', ...),
      // parsed (and refused with PEERLB_INVALID_ARGUMENT) by the core
      transportName = t
    } else if (typeof t === 'object' && typeof t.retain === 'function' && typeof t.release === 'function') {
      transport = t
      transportName = typeof t.name === 'string' && t.name.length > 0 ? t.name : 'custom'
    } else {
      throw typeError(
        'new PeerList: transport must be a transport spec string (e.g. "tcp-probe") or an object with retain(peerId, subscriber) and release(peerId, subscriber) methods',
      )
    }
    const [ejectionOff, ejectionKeys, ejectionValues] = ejectionArgs(o.ejection)
    const clock = clockArg('new PeerList', o.clock)
    this._n = new native.NativeList(
      strategy,
      shuffle,
      seed,
      failFast,
      transport,
      transportName,
      ejectionOff,
      ejectionKeys,
      ejectionValues,
      clock,
    )
    this._id = this._n.id
    this._names = [undefined]
  }

  /**
   * Adds and removes peers (removals first). Everything that can be applied is; failures are
   * thrown together (`err.errors` lists them when there are several).
   * @param {{add?: Array<string|{id: string, weight?: number}>, remove?: string[]}} changes
   */
  update(changes) {
    const c = optionsObject('update(changes)', changes)
    const add = c.add === undefined || c.add === null ? [] : c.add
    const remove = c.remove === undefined || c.remove === null ? [] : c.remove
    if (!Array.isArray(add)) throw typeError(`update: add must be an array, got ${describe(add)}`)
    if (!Array.isArray(remove)) throw typeError(`update: remove must be an array, got ${describe(remove)}`)
    const ids = new Array(add.length)
    const weights = new Array(add.length)
    for (let i = 0; i < add.length; i++) {
      const a = add[i]
      if (typeof a === 'string') {
        ids[i] = a
        weights[i] = 1
      } else if (a !== null && typeof a === 'object' && typeof a.id === 'string') {
        ids[i] = a.id
        const w = a.weight === undefined ? 1 : a.weight
        if (typeof w !== 'number') {
          throw typeError(`update: add[${i}].weight must be a number, got ${describe(w)}`)
        }
        if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) {
          throw invalidArgument(`update: add[${i}].weight must be an integer in 1..2^32-1, got ${w}`)
        }
        weights[i] = w
      } else {
        throw typeError(`update: add[${i}] must be a peer id string or {id, weight}, got ${describe(a)}`)
      }
    }
    for (let i = 0; i < remove.length; i++) {
      if (typeof remove[i] !== 'string') {
        throw typeError(`update: remove[${i}] must be a peer id string, got ${describe(remove[i])}`)
      }
    }
    this._n.update(ids, weights, remove)
  }

  /** Starts the list: retains every peer. */
  start() {
    this._n.start()
  }

  /** Stops the list: releases every peer; waiting chooses fail with PEERLB_NOT_STARTED. */
  stop() {
    this._n.stop()
  }

  /** Whether the list is running. */
  get running() {
    return this._n.running
  }

  _wrap(r) {
    const slot = r % SPAN
    const index = (r - slot) / SPAN
    let peer = this._names[index]
    if (peer === undefined) {
      if (index === 0) {
        peer = this._n.peerOf(slot)
      } else {
        peer = this._n.peerName(index)
        this._names[index] = peer
      }
    }
    return new Choice(this, slot, peer)
  }

  /**
   * Chooses an available peer. Returns at once when one is available or when the list cannot
   * wait (failFast, no timeoutMs, not running). Otherwise it BLOCKS the calling thread (the
   * event loop!) until a peer becomes available or timeoutMs passes; use chooseAsync to wait.
   * @param {{timeoutMs?: number, shardKey?: string|Uint8Array}} [options]
   * @returns {Choice}
   */
  choose(options) {
    if (options === undefined) return this._wrap(choose0(this._id))
    const o = optionsObject('choose(options)', options)
    const timeout = timeoutArg('choose', o.timeoutMs)
    const key = shardKeyArg('choose', o.shardKey)
    return this._wrap(choose(this._id, timeout, key))
  }

  /**
   * Chooses an available peer, waiting (without blocking the event loop) up to timeoutMs.
   * @param {{timeoutMs?: number, shardKey?: string|Uint8Array}} [options]
   * @returns {Promise<Choice>}
   */
  chooseAsync(options) {
    let r
    try {
      const o = optionsObject('chooseAsync(options)', options)
      const timeout = timeoutArg('chooseAsync', o.timeoutMs)
      const key = shardKeyArg('chooseAsync', o.shardKey)
      r = chooseAsync(this._id, timeout, key)
    } catch (err) {
      return Promise.reject(err)
    }
    if (typeof r === 'number') return Promise.resolve(this._wrap(r))
    return r.then((v) => {
      if (typeof v === 'number') return this._wrap(v)
      throw v
    })
  }

  /**
   * A snapshot of the list: {strategy, transport, state, summary, available, total, panic,
   * ejected, disabled, chosen, failures, ejections, peers}; the keys are the core's (the
   * same JSON as C's `peerlb_list_introspect`).
   */
  introspect() {
    return JSON.parse(this._n.introspect())
  }

  /** Every backend with its admin and ejection state (`introspect().peers`). */
  listBackends() {
    return this.introspect().peers
  }

  _admin(action, id) {
    return this._n.admin(action, peerIdArg(action, id))
  }

  /**
   * Admin: no new requests go to `id` (in-flight ones finish); it stays disabled across
   * updates until `enable`. Returns 'success' or 'no-action-required'; a failed operation
   * throws (PEERLB_PEER_NOT_IN_LIST, PEERLB_INVALID_ARGUMENT). See also `admin()`.
   */
  disable(id) {
    return this._admin('disable', id)
  }

  /** Admin: undoes `disable`. Returns 'success' or 'no-action-required'; throws when failed. */
  enable(id) {
    return this._admin('enable', id)
  }

  /** Admin: clears `id`'s ejection and failure history. Returns 'success' or 'no-action-required'; throws when failed. */
  reset(id) {
    return this._admin('reset', id)
  }

  /** Admin: removes `id` and forgets its admin state. Returns 'success'; throws when failed. */
  delete(id) {
    return this._admin('delete', id)
  }

  /**
   * Admin by name, never throwing for a failed operation: `action` is 'disable', 'enable',
   * 'reset' or 'delete'. Returns `{status: 'success' | 'no-action-required'}` or
   * `{status: 'failed', code, message, error}`. Wrong argument types still throw TypeErrors.
   */
  admin(action, id) {
    if (typeof action !== 'string') throw typeError(`admin(action, id): action must be a string, got ${describe(action)}`)
    peerIdArg('admin', id)
    try {
      return { status: this._n.admin(action, id) }
    } catch (err) {
      return { status: 'failed', code: err.code, message: err.message, error: err }
    }
  }

  /**
   * Calls `callback({kind, peer, detail})` for every peer event (kinds: 'added', 'removed',
   * 'available', 'unavailable', 'ejected', 'restored', 'disabled', 'enabled'), in order,
   * one at a time, on the JS thread. Events caused by a call on the JS thread (update,
   * start, stop, admin, finish, clock.advance, a JS transport's setStatus) are delivered
   * before that call returns, unless a library thread is delivering at that moment; events
   * from library threads (real-clock timers, tcp-probe, updaters) arrive through the event
   * loop without keeping the process alive. A callback may call back into the list; one
   * that throws (or returns a rejected promise) is reported as a process warning
   * ('PeerlbWarning', code PEERLB_SUBSCRIBER_THREW) and the others still run.
   * @returns {{unsubscribe(): boolean}} unsubscribe() returns false when already done
   */
  subscribe(callback) {
    if (typeof callback !== 'function') {
      throw typeError(`subscribe(callback): callback must be a function, got ${describe(callback)}`)
    }
    if (this._listeners === undefined) {
      const listeners = []
      // Held weakly by the addon: it lives exactly as long as this list.
      this._dispatch = (kind, peer, detail) => {
        const event = { kind, peer, detail }
        for (const l of listeners.slice()) {
          if (!l.active) continue
          try {
            const r = l.callback(event)
            if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, subscriberFailed)
          } catch (err) {
            subscriberFailed(err)
          }
        }
      }
      this._n.listen(this._dispatch)
      this._listeners = listeners
    }
    const listeners = this._listeners
    const entry = { callback, active: true }
    listeners.push(entry)
    const unsubscribe = () => {
      if (!entry.active) return false
      entry.active = false
      listeners.splice(listeners.indexOf(entry), 1)
      return true
    }
    const subscription = { unsubscribe }
    if (hasDispose) subscription[Symbol.dispose] = unsubscribe
    return subscription
  }

  /**
   * Calls `fn(peer, attempt)` with a chosen peer until it succeeds (resolves or returns),
   * declines, or the core's policy says stop. A thrown error (or rejection) is a failed
   * attempt: the peer's failure counts toward its ejection and the next attempt goes to a
   * peer not tried yet when there is one. An error with code PEERLB_DECLINED (see
   * `declined(message)`) ends the call at once with PEERLB_DECLINED. Final errors:
   * PEERLB_RETRY_EXHAUSTED ('retry attempts exceeded (e1; e2; e3)', 'retry budget
   * exhausted (e1)') or PEERLB_TIMEOUT, with the last attempt's error as `cause`.
   * `timeoutMs` bounds the whole call: it is checked before each retry and bounds each wait
   * for a peer (a running attempt is not interrupted).
   * @template T
   * @param {(peer: string, attempt: number) => T | Promise<T>} fn
   * @param {{maxAttempts?: number, timeoutMs?: number, budget?: RetryBudget, shardKey?: string|Uint8Array}} [options]
   * @returns {Promise<T>}
   */
  async retry(fn, options) {
    if (typeof fn !== 'function') throw typeError(`retry(fn, options): fn must be a function, got ${describe(fn)}`)
    const o = optionsObject('retry(fn, options)', options)
    const maxAttempts = o.maxAttempts === undefined || o.maxAttempts === null ? 3 : o.maxAttempts
    if (typeof maxAttempts !== 'number') {
      throw typeError(`retry: maxAttempts must be a number, got ${describe(maxAttempts)}`)
    }
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 0xffffffff) {
      throw invalidArgument(`retry: maxAttempts must be an integer in 1..2^32-1, got ${maxAttempts}`)
    }
    const timeout = timeoutArg('retry', o.timeoutMs)
    let budget = null
    if (o.budget !== undefined && o.budget !== null) {
      if (!(o.budget instanceof RetryBudget)) {
        throw typeError(`retry: budget must be a RetryBudget, got ${describe(o.budget)}`)
      }
      budget = o.budget._n
    }
    const key = shardKeyArg('retry', o.shardKey)
    const r = new native.NativeRetry(this._n, maxAttempts, timeout, budget)
    let last
    for (;;) {
      let peer
      try {
        peer = r.choose(key)
        if (typeof peer !== 'string') peer = await peer
        if (peer instanceof Error) throw peer
      } catch (err) {
        if (last !== undefined && err.cause === undefined) err.cause = last
        throw err
      }
      const started = performance.now()
      let value
      try {
        value = await fn(peer, r.attempts)
      } catch (err) {
        const latency = performance.now() - started
        if (isDeclined(err)) {
          try {
            r.declined(errorText(err), latency)
          } catch (final) {
            final.cause = err
            throw final
          }
        }
        last = err
        r.failed(errorText(err), latency)
        continue
      }
      r.succeeded(performance.now() - started)
      return value
    }
  }
}

function backendArray(what, v) {
  if (!Array.isArray(v)) throw typeError(`${what} must be an array of strings, got ${describe(v)}`)
  for (const b of v) {
    if (typeof b !== 'string') throw typeError(`${what} must be an array of strings, got an item ${describe(b)}`)
  }
  return v
}

function numberOpt(what, v, dflt) {
  if (v === undefined || v === null) return dflt
  if (typeof v !== 'number') throw typeError(`new Upstream: ${what} must be a number, got ${describe(v)}`)
  return v
}

function errorText(e) {
  try {
    return e instanceof Error ? String(e.message) : String(e)
  } catch {
    return 'a value that cannot be converted to a string'
  }
}

function isDeclined(e) {
  try {
    return e !== null && typeof e === 'object' && e.code === 'PEERLB_DECLINED'
  } catch {
    return false
  }
}

/** Wraps a user check (sync or async) as the native side's `invoke(backend, token)`. */
function checkInvoker(check) {
  const done = native.upstreamCheckDone
  return {
    invoke(backend, token) {
      let r
      try {
        r = check(backend)
      } catch (e) {
        done(token, false, `check threw: ${errorText(e)}`)
        return
      }
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
        r.then(
          (v) => done(token, v !== false, 'check resolved to false'),
          (e) => done(token, false, `check rejected: ${errorText(e)}`),
        )
      } else {
        done(token, r !== false, 'check returned false')
      }
    },
  }
}

/**
 * A score-based list of backends (after go-loadbalancer's upstream): health checks and
 * up()/down() move each backend's score within [lowScore, highScore]; pick() round-robins
 * over the backends with a score >= 0.
 */
class Upstream {
  /**
   * @param {object} options
   * @param {string[]} [options.backends=[]]
   * @param {'tcp-probe'|function(string): (boolean|void|Promise<boolean|void>)} [options.check='tcp-probe']
   *   a JS check runs on the JS thread; throwing, rejecting, returning false or taking longer
   *   than timeoutMs is a failed check
   * @param {number} [options.intervalMs=1000] time between check rounds
   * @param {number} [options.timeoutMs=100] time one check may take
   * @param {boolean} [options.manual=false] no background rounds (use checkNow())
   * @param {number} [options.initialScore=1] @param {number} [options.lowScore=-3]
   * @param {number} [options.highScore=3] @param {number} [options.failDelta=-1]
   * @param {number} [options.successDelta=1]
   */
  constructor(options) {
    const o = optionsObject('new Upstream(options)', options)
    const backends = backendArray('new Upstream: backends', o.backends === undefined ? [] : o.backends)
    let check = null
    const c = o.check
    if (c === undefined || c === null || c === 'tcp-probe') {
      // the built-in TCP probe
    } else if (typeof c === 'string') {
      throw invalidArgument(`unknown check ${JSON.stringify(c)}; expected "tcp-probe" or a function`)
    } else if (typeof c === 'function') {
      check = checkInvoker(c)
    } else {
      throw typeError(`new Upstream: check must be "tcp-probe" or a function, got ${describe(c)}`)
    }
    const manual = o.manual === undefined ? false : o.manual
    if (typeof manual !== 'boolean') throw typeError(`new Upstream: manual must be a boolean, got ${describe(manual)}`)
    const intervalMs = numberOpt('intervalMs', o.intervalMs, 1000)
    if (!manual && intervalMs === 0) throw invalidArgument('intervalMs must be > 0 (use manual: true for no background checks)')
    this._n = new native.NativeUpstream(
      backends,
      check,
      manual ? 0 : intervalMs,
      numberOpt('timeoutMs', o.timeoutMs, 100),
      numberOpt('initialScore', o.initialScore, 1),
      numberOpt('lowScore', o.lowScore, -3),
      numberOpt('highScore', o.highScore, 3),
      numberOpt('failDelta', o.failDelta, -1),
      numberOpt('successDelta', o.successDelta, 1),
    )
  }

  /** The next backend with a score >= 0 (throws PEERLB_NO_PEER_AVAILABLE when none). */
  pick() {
    return this._n.pick()
  }

  /** Moves the backend's score up by successDelta (capped at highScore). */
  up(backend) {
    if (typeof backend !== 'string') throw typeError(`up: backend must be a string, got ${describe(backend)}`)
    this._n.up(backend)
  }

  /** Moves the backend's score down by failDelta (capped at lowScore). */
  down(backend) {
    if (typeof backend !== 'string') throw typeError(`down: backend must be a string, got ${describe(backend)}`)
    this._n.down(backend)
  }

  /** Replaces the backends; those that stay keep their score. */
  reconcile(backends) {
    this._n.reconcile(backendArray('reconcile: backends', backends))
  }

  /** The backend's score, or undefined. */
  score(backend) {
    if (typeof backend !== 'string') throw typeError(`score: backend must be a string, got ${describe(backend)}`)
    const s = this._n.score(backend)
    return s === null ? undefined : s
  }

  /** {backend: score} in list order. */
  scores() {
    const names = this._n.backends()
    const values = this._n.scoreValues()
    const out = {}
    names.forEach((n, i) => {
      if (!(n in out)) out[n] = values[i]
    })
    return out
  }

  /** The backends in list order. */
  get backends() {
    return this._n.backends()
  }

  /** Runs one check round now; resolves when every check ended or timed out. */
  checkNow() {
    return this._n.checkNow()
  }

  /** Stops the health checks (pick/up/down/reconcile keep working). */
  shutdown() {
    this._n.shutdown()
  }
}

/** Core error codes: kebab-case name → Node `code` (e.g. 'timeout' → 'PEERLB_TIMEOUT'). */
const errorCodes = Object.freeze(Object.fromEntries(native.errorCodes()))

function listOf(what, list) {
  if (!(list instanceof PeerList)) throw typeError(`${what}: list must be a PeerList, got ${describe(list)}`)
  return list._n
}

function msOption(what, v) {
  if (v === undefined || v === null) return -1
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw typeError(`${what} must be a non-negative number of milliseconds, got ${describe(v)}`)
  }
  return v
}

/**
 * An updater bound to a list (`updater.bind(list)`): `start()` follows the source, `stop()`
 * stops following it (the peers stay). A failing source keeps the last good set; see
 * `lastError`.
 */
class Binding {
  constructor(n) {
    this._n = n
  }
  /** Starts following the source (static and file apply before returning). */
  start() {
    this._n.start()
    return this
  }
  /** Stops following the source. */
  stop() {
    this._n.stop()
  }
  /** Whether it is started. */
  get running() {
    return this._n.running
  }
  /** What it follows, e.g. 'file:/etc/peers'. */
  get source() {
    return this._n.source
  }
  /** The set last applied, sorted by id. */
  peers() {
    const ids = this._n.peerIds()
    const weights = this._n.peerWeights()
    return ids.map((id, i) => ({ id, weight: weights[i] }))
  }
  /** The source's current failure (an Error with code PEERLB_SOURCE_FAILED), or null. */
  get lastError() {
    const e = this._n.lastError()
    if (e === null || e === undefined) return null
    const err = new Error(e[1])
    err.code = e[0]
    return err
  }
  /** Counters of the current run. */
  stats() {
    const [goodReads, changes, failures] = this._n.stats()
    return { goodReads, changes, failures }
  }
}
if (typeof Symbol.dispose === 'symbol') {
  Object.defineProperty(Binding.prototype, Symbol.dispose, {
    value: function dispose() {
      if (this._n.running) this._n.stop()
    },
    writable: true,
    configurable: true,
  })
}

/** A fixed set of peers (`'id'` or `{id, weight}`), applied when the binding starts. */
class StaticUpdater {
  constructor(peers) {
    if (!Array.isArray(peers)) throw typeError(`new StaticUpdater: peers must be an array, got ${describe(peers)}`)
    this._ids = []
    this._weights = []
    peers.forEach((p, i) => {
      if (typeof p === 'string') {
        this._ids.push(p)
        this._weights.push(1)
      } else if (p !== null && typeof p === 'object' && typeof p.id === 'string') {
        const w = p.weight === undefined ? 1 : p.weight
        if (!Number.isInteger(w) || w < 1 || w > 0xffffffff) {
          throw invalidArgument(`StaticUpdater: peers[${i}].weight must be an integer in 1..2^32-1, got ${describe(w)}`)
        }
        this._ids.push(p.id)
        this._weights.push(w)
      } else {
        throw typeError(`new StaticUpdater: peers[${i}] must be a peer id string or {id, weight}, got ${describe(p)}`)
      }
    })
  }
  /** @param {PeerList} list */
  bind(list) {
    return new Binding(native.NativeBinding.fixed(listOf('bind', list), this._ids, this._weights))
  }
}

/** One `host:port [weight]` per line (`#` comments), polled every `pollIntervalMs` (250). */
class FileUpdater {
  constructor(path, options) {
    if (typeof path !== 'string' || path.length === 0) {
      throw typeError(`new FileUpdater: path must be a non-empty string, got ${describe(path)}`)
    }
    const o = options === undefined ? {} : optionsObject('new FileUpdater(path, options)', options)
    this._path = path
    this._poll = msOption('pollIntervalMs', o.pollIntervalMs)
  }
  /** @param {PeerList} list */
  bind(list) {
    return new Binding(native.NativeBinding.file(listOf('bind', list), this._path, this._poll))
  }
}

/**
 * A DNS name: SRV records (`record: 'srv'`, the default) or A/AAAA records + `port`
 * (`record: 'a' | 'aaaa' | 'ip'`), polled. An empty answer empties the list only after
 * `emptyThreshold` (3) consecutive polls.
 */
class DnsUpdater {
  constructor(name, options) {
    if (typeof name !== 'string') throw typeError(`new DnsUpdater: name must be a string, got ${describe(name)}`)
    const o = options === undefined ? {} : optionsObject('new DnsUpdater(name, options)', options)
    const record = o.record === undefined ? 'srv' : o.record
    if (typeof record !== 'string') throw typeError(`new DnsUpdater: record must be a string, got ${describe(record)}`)
    const port = o.port === undefined ? 0 : o.port
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalidArgument(`DnsUpdater: port must be an integer in 1..65535, got ${describe(port)}`)
    }
    if (record !== 'srv' && port === 0) throw invalidArgument(`DnsUpdater: record '${record}' needs a port`)
    const nameserver = o.nameserver === undefined || o.nameserver === null ? '' : o.nameserver
    if (typeof nameserver !== 'string') {
      throw typeError(`new DnsUpdater: nameserver must be an 'ip:port' string, got ${describe(nameserver)}`)
    }
    const threshold = o.emptyThreshold === undefined ? 3 : o.emptyThreshold
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > 0xffffffff) {
      throw invalidArgument(`DnsUpdater: emptyThreshold must be an integer >= 1, got ${describe(threshold)}`)
    }
    this._args = [
      name,
      record,
      port,
      nameserver,
      msOption('minIntervalMs', o.minIntervalMs),
      msOption('maxIntervalMs', o.maxIntervalMs),
      msOption('timeoutMs', o.timeoutMs),
      threshold,
    ]
  }
  /** @param {PeerList} list */
  bind(list) {
    return new Binding(native.NativeBinding.dns(listOf('bind', list), ...this._args))
  }
}

/**
 * Watches an etcd key prefix: each key is a peer (value `{"addr": "host:port", "weight": n}`,
 * `host:port`, or empty = the key suffix). Needs an addon built with the `etcd` feature.
 */
class EtcdUpdater {
  constructor(endpoints, prefix, options) {
    if (!Array.isArray(endpoints) || endpoints.some((e) => typeof e !== 'string')) {
      throw typeError(`new EtcdUpdater: endpoints must be an array of 'http://host:port' strings, got ${describe(endpoints)}`)
    }
    if (typeof prefix !== 'string') throw typeError(`new EtcdUpdater: prefix must be a string, got ${describe(prefix)}`)
    const o = options === undefined ? {} : optionsObject('new EtcdUpdater(endpoints, prefix, options)', options)
    this._args = [endpoints.slice(), prefix, msOption('timeoutMs', o.timeoutMs), msOption('retryIntervalMs', o.retryIntervalMs)]
  }
  /** @param {PeerList} list */
  bind(list) {
    return new Binding(native.NativeBinding.etcd(listOf('bind', list), ...this._args))
  }
}

module.exports = {
  PeerList,
  Upstream,
  Choice,
  ManualClock,
  RetryBudget,
  declined,
  Subscriber: native.Subscriber,
  StaticUpdater,
  FileUpdater,
  DnsUpdater,
  EtcdUpdater,
  Binding,
  errorCodes,
  coreVersion: native.coreVersion(),
  _native: native,
}
