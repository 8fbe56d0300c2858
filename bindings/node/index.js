// peerlb for Node: client-side load balancing over the Rust core (a napi-rs addon).
//
// Most of the API is native (see native.d.ts, generated from the Rust sources): the addon
// and the core check and default every option. This file adds what JS must do: the hot
// path's `Choice` objects and their finalizer, Promises, `Symbol.dispose`, the event
// dispatcher, and the retry loop around user code.
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
const { choose0, choose, chooseAsync, finish, finish0, release, alreadyFinished } = native

/** A token's peer index is `floor(token / 2^37)` (see src/table.rs). */
const PEER_SPAN = 2 ** 37
/** Choices made before the event loop's next check phase are looked at in batches of this size. */
const YOUNG_MAX = 1024
/** Items of `updateAsync`'s arrays read per turn of the event loop (a few ms at most). */
const UPDATE_SLICE = 4096
const hasDispose = typeof Symbol.dispose === 'symbol'

/** Throws the TypeError (code ERR_INVALID_ARG_TYPE) for a wrong argument type. */
function typeError(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_ARG_TYPE'
  return e
}

/** The thrown value, shown in a message (never throwing itself). */
function describeThrown(v) {
  try {
    return v instanceof Error ? `${v.name}: ${v.message}` : String(v)
  } catch {
    return 'a value that cannot be shown'
  }
}

/**
 * Reads `o[key]` of an argument. A getter or proxy that throws gives PEERLB_INVALID_ARGUMENT
 * naming what was read, with the thrown value as `cause`: what the addon does for the
 * arguments it reads (README, "Errors").
 */
function field(what, o, key) {
  try {
    return o[key]
  } catch (thrown) {
    throw readThrew(`${what}.${key}`, thrown)
  }
}

/** The PEERLB_INVALID_ARGUMENT for an argument whose reading threw `thrown` (its `cause`). */
function readThrew(what, thrown) {
  const e = new Error(`invalid argument: ${what}: reading it threw: ${describeThrown(thrown)}`, { cause: thrown })
  e.code = 'PEERLB_INVALID_ARGUMENT'
  return e
}

/** An options argument of the hot path: an object, or nothing. */
function optionsArg(what, v) {
  if (v === undefined || v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(`${what} must be an options object`)
  return v
}

/** The fields of a load report object and their ORCA text names. */
const LOAD_FIELDS = [
  ['requestsInFlight', 'named_metrics.rif'],
  ['utilization', 'cpu_utilization'],
  ['qps', 'rps_fractional'],
  ['eps', 'eps'],
]

/**
 * A load report as ORCA text for the addon: text as it is, an object's fields written
 * out (the core parses and judges the numbers), anything else passed on to be refused.
 */
function orcaText(load) {
  if (load === null || typeof load !== 'object') return load
  const known = new Set(LOAD_FIELDS.map(([key]) => key))
  for (const key of Object.keys(load)) {
    if (!known.has(key)) {
      throw new TypeError(
        `finish: load has no field ${JSON.stringify(key)}; expected requestsInFlight, utilization, qps, eps`,
      )
    }
  }
  const pairs = []
  for (const [key, name] of LOAD_FIELDS) {
    const v = load[key]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number') {
      throw new TypeError(`finish: load.${key} must be a number, got ${typeof v}`)
    }
    pairs.push(`${name}=${v}`)
  }
  return `TEXT ${pairs.join(', ')}`
}

/** The outcome's number for `finish` (the addon parses, or refuses, anything else). */
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
      return native.outcomeCode(outcome)
  }
}

/**
 * A chosen peer. The request counts as pending on that peer until `finish` (or `cancel`);
 * a `Choice` garbage-collected unfinished is finished as 'cancelled'.
 */
class Choice {
  constructor(list, token, peer) {
    /** The chosen peer's id, e.g. "10.0.0.1:8080". */
    this.peer = peer
    // The PeerList (not just its id): an unfinished choice keeps its list alive.
    this._list = list
    this._token = token
    this._watched = false
  }

  /** Whether the choice has been finished. */
  get finished() {
    return this._token < 0
  }

  /**
   * Ends the request: `outcome` is 'ok' (default), 'failure', 'declined' or 'cancelled';
   * `latencyMs` is how long it took, if known; `load` is the backend's load report, if it
   * sent one: ORCA text as in its `endpoint-load-metrics` header
   * (`'TEXT cpu_utilization=0.4, rps_fractional=80, named_metrics.rif=3'`) or
   * `{requestsInFlight, utilization, qps, eps}` (each optional). Returns true; finishing
   * again (or finishing a copy of a finished choice) throws PEERLB_ALREADY_FINISHED and
   * changes nothing; a bad load report throws (PEERLB_INVALID_ARGUMENT, or a TypeError)
   * and leaves the choice pending.
   */
  finish(outcome, latencyMs, load) {
    const token = this._token
    if (token < 0) throw alreadyFinished(this.peer)
    const list = this._list
    const done =
      load !== undefined
        ? finish(list._id, token, outcomeCode(outcome), latencyMs, orcaText(load))
        : latencyMs !== undefined
          ? finish(list._id, token, outcomeCode(outcome), latencyMs)
          : outcome === undefined
            ? finish0(list._id, token)
            : finish(list._id, token, outcomeCode(outcome))
    this._token = -1
    if (this._watched) list._fin.unregister(this)
    if (!done) throw alreadyFinished(this.peer)
    return true
  }

  /** Abandons the request: the same as `finish('cancelled')`. */
  cancel() {
    return this.finish('cancelled')
  }

  /** The same as `cancel()` (the name Python uses). */
  release() {
    return this.finish('cancelled')
  }

  toString() {
    return `Choice(${this.peer}${this._token < 0 ? ', finished' : ''})`
  }
}

if (hasDispose) {
  // `using choice = list.choose(...)` cancels the choice at scope exit unless it was finished.
  Object.defineProperty(Choice.prototype, Symbol.dispose, {
    value: function dispose() {
      if (this._token >= 0) this.finish('cancelled')
    },
    writable: true,
    configurable: true,
  })
}

/** Reports what an event subscriber threw (or rejected with) as a process warning. */
function subscriberFailed(err) {
  process.emitWarning(`a peerlb event subscriber threw: ${errorText(err)}`, {
    type: 'PeerlbWarning',
    code: 'PEERLB_SUBSCRIBER_THREW',
  })
}

function errorText(e) {
  try {
    return e instanceof Error ? String(e.message) : String(e)
  } catch {
    return 'a value that cannot be converted to a string'
  }
}

/** The remote system's code an attempt's error carries (`err.remoteCode`), if any. */
function remoteCodeOf(e) {
  try {
    return e !== null && typeof e === 'object' && typeof e.remoteCode === 'number' ? e.remoteCode : undefined
  } catch {
    return undefined
  }
}

function isDeclined(e) {
  try {
    return e !== null && typeof e === 'object' && e.code === 'PEERLB_DECLINED'
  } catch {
    return false
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

// Calls every active listener with `toEvent(...args)`, in order; a throwing or rejecting
// listener goes to subscriberFailed and the others still run.
function dispatcher(listeners, toEvent) {
  return (...args) => {
    const event = toEvent(...args)
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
}

// Adds `callback` to `listeners`; returns its subscription (unsubscribe / cancel / dispose).
function addListener(listeners, callback) {
  const entry = { callback, active: true }
  listeners.push(entry)
  const unsubscribe = () => {
    if (!entry.active) return false
    entry.active = false
    listeners.splice(listeners.indexOf(entry), 1)
    return true
  }
  const subscription = { unsubscribe, cancel: unsubscribe }
  if (hasDispose) subscription[Symbol.dispose] = unsubscribe
  return subscription
}

/**
 * A list of peers and a strategy to choose among the available ones. The options, the
 * lifecycle (`update`, `start`, `stop` and their async forms), admin and introspection are
 * native (see native.d.ts); this class adds choosing, events and retries.
 */
class PeerList extends native.NativeList {
  constructor(options) {
    super(options)
    this._id = this.id
    this._names = [undefined]
    // The addon refers to a JS transport weakly; this list holds it.
    this._transport = this.transportObject()
    // Choices made since the last look (see _watch), and the finalizer of the others.
    this._young = null
    this._fin = null
    this._adopt = () => this._watch(false)
    this._listeners = undefined
    this._dispatch = undefined
  }

  _wrap(token) {
    const index = (token / PEER_SPAN) >>> 0
    let peer = this._names[index]
    if (peer === undefined) peer = this._peer(index, token)
    const c = new Choice(this, token, peer)
    // A fresh array per batch: it and its choices are young together (a long-lived array
    // would make every push a store from old to new space, which the GC must record).
    let young = this._young
    if (young === null) {
      this._young = young = []
      // Looked at in the loop's next check phase: a choice finished before that (also
      // after awaiting promises that are already settled) is never registered. Unref'd: it
      // does not keep the process alive.
      setImmediate(this._adopt).unref()
    }
    if (young.push(c) >= YOUNG_MAX) this._watch(true)
    return c
  }

  _peer(index, token) {
    if (index === 0) return this.peerOf(token)
    const peer = this.peerName(index)
    this._names[index] = peer
    return peer
  }

  /**
   * Registers the still unfinished choices among the young ones with the finalizer, which
   * cancels them if they are garbage-collected unfinished. Choices finished before the
   * event loop's next check phase (the common case for a choose + finish) never pay for a
   * registration.
   */
  _watch(more) {
    const young = this._young
    // From the check phase there is no array until the next choose; for a full batch a new
    // one, which the pending check-phase callback looks at.
    this._young = more ? [] : null
    if (young === null) return
    for (let i = 0; i < young.length; i++) {
      const c = young[i]
      if (c._token >= 0 && !c._watched) {
        if (this._fin === null) this._fin = new FinalizationRegistry((token) => release(this._id, token))
        this._fin.register(c, c._token, c)
        c._watched = true
      }
    }
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
    const o = optionsArg('choose(options)', options)
    const what = 'choose(options)'
    return this._wrap(choose(this._id, field(what, o, 'timeoutMs'), field(what, o, 'shardKey')))
  }

  /**
   * Chooses an available peer, waiting (without blocking the event loop) up to timeoutMs.
   * @param {{timeoutMs?: number, shardKey?: string|Uint8Array}} [options]
   * @returns {Promise<Choice>}
   */
  chooseAsync(options) {
    let r
    try {
      const o = optionsArg('chooseAsync(options)', options)
      const what = 'chooseAsync(options)'
      r = chooseAsync(this._id, field(what, o, 'timeoutMs'), field(what, o, 'shardKey'))
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
   * `update(changes)` without blocking the event loop: the arrays are read a slice per turn
   * of the loop (do not change them until the Promise settles), the change runs on a
   * library thread, and its events are delivered before the Promise settles.
   * @param {{add?: Array<string|{id: string, weight?: number}>, remove?: string[]}} changes
   * @returns {Promise<void>}
   */
  async updateAsync(changes) {
    const pending = new native.PendingUpdate(changes)
    while (pending.read(UPDATE_SLICE)) await nextTurn()
    return pending.apply(this)
  }

  /**
   * A snapshot of the list: {strategy, transport, state, summary, available, total, panic,
   * ejected, disabled, chosen, failures, ejections, peers}; the keys are the core's (the
   * same JSON as C's `peerlb_list_introspect`). O(peers) on the calling thread: for very
   * large lists prefer `introspectAsync`.
   */
  introspect() {
    return JSON.parse(this.introspectJson())
  }

  /**
   * `introspect()` without blocking the event loop: the snapshot is made on a library
   * thread, and its peers are turned into objects a slice (1000 peers) per turn of the loop.
   */
  async introspectAsync() {
    const parts = await this.introspectParts()
    const info = JSON.parse(parts.next())
    const peers = []
    for (let part = parts.next(); part !== null; part = parts.next()) {
      for (const p of JSON.parse(part)) peers.push(p)
      await nextTurn()
    }
    info.peers = peers
    return info
  }

  /** Every backend with its admin and ejection state (the peers of `introspect()`). */
  listBackends() {
    return JSON.parse(this.listBackendsJson())
  }

  /**
   * Calls `callback({kind, peer, detail})` for every peer event (kinds: 'added', 'removed',
   * 'available', 'unavailable', 'ejected', 'restored', 'disabled', 'enabled'), in order,
   * one at a time, on the JS thread (see README.md, "Events").
   * @returns {{unsubscribe(): boolean, cancel(): boolean}} false when already unsubscribed
   */
  subscribe(callback) {
    if (typeof callback !== 'function') throw typeError('subscribe(callback): callback must be a function')
    if (this._listeners === undefined) {
      // Held weakly by the addon: it lives exactly as long as this list.
      const listeners = []
      this._dispatch = dispatcher(listeners, (kind, peer, detail) => ({ kind, peer, detail }))
      this.listen(this._dispatch)
      this._listeners = listeners
    }
    return addListener(this._listeners, callback)
  }

  /**
   * Calls `callback({kind, session, peer, reason})` for every session event (kinds:
   * 'created', 'terminated', 'failover-requested'), with the delivery rules of `subscribe`.
   * @returns {{unsubscribe(): boolean, cancel(): boolean}} false when already unsubscribed
   */
  subscribeSessions(callback) {
    if (typeof callback !== 'function') throw typeError('subscribeSessions(callback): callback must be a function')
    if (this._sessionListeners === undefined) {
      // Held weakly by the addon: it lives exactly as long as this list.
      const listeners = []
      this._sessionDispatch = dispatcher(listeners, (kind, session, peer, reason) => ({ kind, session, peer, reason }))
      this.listenSessions(this._sessionDispatch)
      this._sessionListeners = listeners
    }
    return addListener(this._sessionListeners, callback)
  }

  /**
   * Admin: adds the backend `data` describes, `{id: 'host:port', weight: 2}` (an object,
   * or its JSON text), and returns the answer as JSON text:
   * `{"result":"success","code":1,"id":...}` or `{"result":"failed","code":4,"reason":...,
   * "error":...}`. Bad data is a failed answer, not an exception.
   * @param {string | {id: string, weight?: number}} data
   * @returns {string}
   */
  addBackend(data) {
    if (data !== null && typeof data === 'object') {
      try {
        data = JSON.stringify(data)
      } catch (err) {
        // A BigInt or a cycle has no JSON: a wrong argument type, coded like the others;
        // a getter, proxy or toJSON that throws: as any argument read that throws.
        if (err instanceof TypeError) {
          const e = typeError(`addBackend(data): data cannot be written as JSON (${err.message})`)
          e.cause = err
          throw e
        }
        throw readThrew('addBackend(data): data', err)
      }
    }
    return this.addBackendJson(data)
  }

  /**
   * Calls `fn(peer, attempt)` with a chosen peer until it succeeds (resolves or returns),
   * declines, or the core's policy says stop (see README.md, "Retry"). Options are
   * checked by the addon (`RetryOptions`).
   * @template T
   * @param {(peer: string, attempt: number) => T | Promise<T>} fn
   * @param {{maxAttempts?: number, timeoutMs?: number, budget?: RetryBudget, shardKey?: string|Uint8Array}} [options]
   * @returns {Promise<T>}
   */
  async retry(fn, options) {
    if (typeof fn !== 'function') throw typeError('retry(fn, options): fn must be a function')
    const r = new native.NativeRetry(this, options)
    let last
    for (;;) {
      let peer
      try {
        peer = r.choose()
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
            r.declined(errorText(err), latency, remoteCodeOf(err))
          } catch (final) {
            final.cause = err
            throw final
          }
        }
        last = err
        r.failed(errorText(err), latency, remoteCodeOf(err))
        continue
      }
      r.succeeded(performance.now() - started)
      return value
    }
  }
}

/** Wraps a user check (sync or async) as the addon's `invoke(backend, token)`. */
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
 * over the backends with a score >= 0. `check` is 'tcp-probe' (default) or a function
 * (sync or async: returning/resolving `false`, throwing or rejecting fails the check).
 */
class Upstream extends native.NativeUpstream {
  constructor(options) {
    const check = options !== null && typeof options === 'object' ? field('Upstream(options)', options, 'check') : undefined
    const invoker = typeof check === 'function' ? checkInvoker(check) : null
    super(options, invoker === null ? check : undefined, invoker)
    // The addon refers to the invoker weakly; this upstream holds it.
    this._invoker = invoker
  }
}

if (hasDispose) {
  // `using s = list.openSession()` closes the session at scope exit (unless it ended).
  Object.defineProperty(native.NativeSession.prototype, Symbol.dispose, {
    value: function dispose() {
      if (!this.closed) this.close()
    },
    writable: true,
    configurable: true,
  })
  // `using b = updater.bind(list).start()` stops the binding at scope exit.
  Object.defineProperty(native.Binding.prototype, Symbol.dispose, {
    value: function dispose() {
      if (this.running) this.stop()
    },
    writable: true,
    configurable: true,
  })
}

if (hasDispose) {
  // `using admin = peerlb.serveAdmin(':0')` stops the admin endpoint at scope exit.
  Object.defineProperty(native.AdminServer.prototype, Symbol.dispose, {
    value: function dispose() {
      this.stop()
    },
    writable: true,
    configurable: true,
  })
}

/** Core error codes: kebab-case name → Node `code` (e.g. 'timeout' → 'PEERLB_TIMEOUT'). */
const errorCodes = Object.freeze(Object.fromEntries(native.errorCodes()))

/** The balancer's admin result numbers by name: 'success' → 1, 'no-action-required' → 3, 'failed' → 4. */
const adminResultCodes = Object.freeze(Object.fromEntries(native.adminResultCodes()))

/** The admin result numbers: `AdminResult.SUCCESS` (1), `.NO_ACTION_REQUIRED` (3), `.FAILED` (4). */
const AdminResult = Object.freeze(
  Object.fromEntries(native.adminResultCodes().map(([name, n]) => [name.toUpperCase().replace(/-/g, '_'), n])),
)

/**
 * An exported class whose objects only the package makes (choices, sessions, subscribers,
 * bindings): `new` on it throws Node's TypeError with code ERR_ILLEGAL_CONSTRUCTOR, as
 * Node's own such classes do (napi's message had no code, and a hand-made Choice failed
 * later on its fields). `instanceof` and static members work as before.
 */
function madeByPeerlb(cls, name) {
  return new Proxy(cls, {
    construct() {
      const e = new TypeError(`${name} objects are made by peerlb; they cannot be made with new`)
      e.code = 'ERR_ILLEGAL_CONSTRUCTOR'
      throw e
    },
  })
}

module.exports = {
  PeerList,
  Upstream,
  Choice: madeByPeerlb(Choice, 'Choice'),
  Session: madeByPeerlb(native.NativeSession, 'Session'),
  AdminResult,
  adminResultCodes,
  ManualClock: native.ManualClock,
  RetryBudget: native.RetryBudget,
  RequestRule: native.RequestRule,
  declined: native.declined,
  Subscriber: madeByPeerlb(native.Subscriber, 'Subscriber'),
  StaticUpdater: native.StaticUpdater,
  FileUpdater: native.FileUpdater,
  DnsUpdater: native.DnsUpdater,
  EtcdUpdater: native.EtcdUpdater,
  XdsUpdater: native.XdsUpdater,
  Binding: madeByPeerlb(native.Binding, 'Binding'),
  AdminServer: madeByPeerlb(native.AdminServer, 'AdminServer'),
  serveAdmin: native.serveAdmin,
  metrics: native.metrics,
  deterministicSubset: native.deterministicSubset,
  errorCodes,
  strategies: Object.freeze(native.strategyNames()),
  coreVersion: native.coreVersion(),
  _native: native,
}
