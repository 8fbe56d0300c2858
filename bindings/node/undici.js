// peerlb/undici: an undici Dispatcher that sends every request to the peer a PeerList
// chooses, judged by the core's request rule.
//
//   const { Dispatcher } = require('peerlb/undici')
//   const dispatcher = new Dispatcher(list)
//   await fetch('http://orders.internal/v1/orders', { dispatcher })   // or undici.request,
//   undici.setGlobalDispatcher(dispatcher)                           // or every fetch
//
// Each request goes to the chosen host:port (an inner undici Agent keeps a pool per peer)
// with the URL's own Host header, which undici also uses as the TLS server name. The core
// decides the outcome (connect errors, resets, timeouts and 5xx are failures of the peer),
// the latency (to the response's head) and whether to send the request to another peer:
// idempotent methods (or `idempotent: true` in the dispatch options, or a request that
// never connected), a body in memory (fetch streams its bodies: a fetch with a body is sent
// once), attempts left, the rule's timeout and the retry budget. A response that is
// retried is read to its end and dropped; otherwise the caller gets the last response or
// error, as without peerlb.
//
// The handler API: undici's (legacy `onConnect`/`onHeaders`/..., as Node's built-in fetch
// and undici 7's request/fetch pass, or `onRequestStart`/`onResponseStart`/..., as
// undici 8 and interceptors do) is kept as the caller gave it; each attempt is dispatched
// to the inner Agent in the same style when the installed undici takes it (7 takes both,
// 8 only the new one, to which legacy callers are adapted).
'use strict'

const peerlb = require('./index.js')

let undici
try {
  undici = require('undici')
} catch (err) {
  const e = new Error(`peerlb/undici needs the undici package (npm install undici): ${err.message}`)
  e.code = 'PEERLB_UNDICI_MISSING'
  e.cause = err
  throw e
}

const { RequestRule, _native: native } = peerlb
const { NativeRequestCall } = native

/** Whether the installed undici's dispatchers take handlers with the legacy callbacks. */
const INNER_TAKES_LEGACY = (() => {
  try {
    return Number(require('undici/package.json').version.split('.')[0]) < 8
  } catch {
    return false
  }
})()

function typeError(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_ARG_TYPE'
  return e
}

/** Whether a handler uses undici's new callbacks (onRequestStart, onResponseStart, ...). */
function isNewStyle(handler) {
  return typeof handler.onRequestStart === 'function' || typeof handler.onResponseStart === 'function'
}

/** Whether a dispatch body can be sent again: none, or in memory. */
function replayable(body) {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array
}

/** The request rule's name for an undici error, and an outcome when the peer is not to blame. */
function errorKind(err) {
  const code = err !== null && typeof err === 'object' ? err.code : undefined
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['connect-failed', null]
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return ['timed-out', null]
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return ['reset', null]
    case 'UND_ERR_ABORTED':
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return ['failed', 'cancelled']
    default:
      return ['failed', null]
  }
}

/** `headers` (any form undici takes) with `host` set to `host` unless it has one. */
function withHost(headers, host) {
  if (headers === undefined || headers === null) return { host }
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'host') return headers
    }
    return [...headers, 'host', host]
  }
  if (typeof headers[Symbol.iterator] === 'function') {
    const flat = []
    for (const [k, v] of headers) {
      if (String(k).toLowerCase() === 'host') return headers
      flat.push(k, v)
    }
    flat.push('host', host)
    return flat
  }
  for (const k of Object.keys(headers)) {
    if (k.length === 4 && k.toLowerCase() === 'host') return headers
  }
  return { ...headers, host }
}

/** Raw headers (undici's legacy form: [name, value, ...] as Buffers) of a headers object. */
function rawHeaders(headers) {
  const raw = []
  if (headers) {
    for (const [k, v] of Object.entries(headers)) {
      if (Array.isArray(v)) for (const item of v) raw.push(Buffer.from(k, 'latin1'), Buffer.from(String(item), 'latin1'))
      else raw.push(Buffer.from(k, 'latin1'), Buffer.from(String(v), 'latin1'))
    }
  }
  return raw
}

/** Stops the timer of the rule's timeout for an attempt, if it has one. */
function clearAttemptTimer(attempt) {
  if (attempt.timer) {
    clearTimeout(attempt.timer)
    attempt.timer = null
  }
}

/** The controller a new-style caller gets: pause, resume and abort act on the current attempt. */
class CallerController {
  constructor(request) {
    this._request = request
    this._paused = false
  }

  abort(reason) {
    this._request.abortByCaller(reason)
  }

  pause() {
    this._paused = true
    this._request.attempt?.pause()
  }

  resume() {
    this._paused = false
    this._request.attempt?.resume()
  }

  get paused() {
    return this._paused
  }

  get aborted() {
    return this._request.aborted !== undefined
  }

  get reason() {
    return this._request.aborted ?? null
  }
}

/** One attempt dispatched with the legacy callbacks (undici 7's own style). */
class LegacyAttempt {
  constructor(request) {
    this.request = request
    this.timer = null
    this.abortAttempt = null
    this.resumeAttempt = null
    this.ended = false
  }

  abort(reason) {
    if (this.abortAttempt === null) this.pendingAbort = reason
    else this.abortAttempt(reason)
  }

  pause() {}

  resume() {
    this.resumeAttempt?.()
  }

  onConnect(abort, context) {
    this.abortAttempt = abort
    if (this.pendingAbort !== undefined) {
      abort(this.pendingAbort)
      return
    }
    this.request.connected(this, context)
  }

  onResponseStarted() {
    this.request.forward('onResponseStarted')
  }

  onBodySent(chunk) {
    this.request.forward('onBodySent', chunk)
  }

  onRequestSent() {
    this.request.forward('onRequestSent')
  }

  onUpgrade(statusCode, raw, socket) {
    this.request.upgraded(this, statusCode, raw, null, socket)
  }

  onHeaders(statusCode, raw, resume, statusText) {
    this.resumeAttempt = resume
    return this.request.headers(this, statusCode, raw, null, statusText)
  }

  onData(chunk) {
    return this.request.data(this, chunk)
  }

  onComplete(trailers) {
    this.request.complete(this, trailers, null)
  }

  onError(err) {
    this.request.failed(this, err)
  }
}

/** One attempt dispatched with the new callbacks (undici 8, or a new-style caller). */
class NewStyleAttempt {
  constructor(request) {
    this.request = request
    this.timer = null
    this.controller = null
    this.ended = false
  }

  abort(reason) {
    if (this.controller === null) this.pendingAbort = reason
    else this.controller.abort(reason)
  }

  pause() {
    this.controller?.pause()
  }

  resume() {
    this.controller?.resume()
  }

  onRequestStart(controller, context) {
    this.controller = controller
    if (this.pendingAbort !== undefined) {
      controller.abort(this.pendingAbort)
      return
    }
    this.request.connected(this, context)
  }

  onRequestUpgrade(controller, statusCode, headers, socket) {
    this.request.upgraded(this, statusCode, null, headers, socket)
  }

  onResponseStart(controller, statusCode, headers, statusMessage) {
    if (this.request.headers(this, statusCode, null, headers, statusMessage) === false) controller.pause()
  }

  onResponseData(controller, chunk) {
    if (this.request.data(this, chunk) === false) controller.pause()
  }

  onResponseEnd(controller, trailers) {
    this.request.complete(this, null, trailers)
  }

  onResponseError(controller, err) {
    this.request.failed(this, err)
  }
}

/**
 * One request through the dispatcher: chooses a peer, dispatches an attempt to the inner
 * Agent, reports how it went, and either forwards the attempt to the caller or tries
 * another peer.
 */
class BalancedRequest {
  constructor(dispatcher, opts, handler) {
    this.dispatcher = dispatcher
    this.opts = opts
    this.caller = handler
    this.callerNewStyle = isNewStyle(handler)
    this.legacy = INNER_TAKES_LEGACY && !this.callerNewStyle
    const origin = opts.origin instanceof URL ? opts.origin : new URL(String(opts.origin))
    this.protocol = origin.protocol
    this.headersWithHost = withHost(opts.headers, origin.host)
    const idempotent = typeof opts.idempotent === 'boolean' ? opts.idempotent : null
    this.call = new NativeRequestCall(dispatcher._rule, dispatcher._list, opts.method, replayable(opts.body), idempotent)
    this.attempt = null
    this.next = null // the peer chosen for the next attempt while a response is discarded
    this.mode = 'sending' // 'sending' | 'forwarding' | 'discarding' | 'done'
    this.started = false // the caller's onConnect / onRequestStart was called
    this.aborted = undefined
    this.controller = this.callerNewStyle ? new CallerController(this) : null
    this.peer = null
  }

  start() {
    let chosen
    try {
      chosen = this.call.choose()
    } catch (err) {
      this.fail(err)
      return
    }
    this.whenChosen(chosen, (peer) => this.send(peer), (err) => this.fail(err))
  }

  /** Runs `ok(peer)` or `none(err)` for what `call.choose()` gave (a peer or a Promise). */
  whenChosen(chosen, ok, none) {
    if (typeof chosen.then !== 'function') {
      ok(chosen)
      return
    }
    chosen.then(
      (v) => (v instanceof Error ? none(v) : ok(v)),
      (err) => none(err),
    )
  }

  send(peer) {
    if (this.aborted !== undefined) {
      this.call.report(null, 'failed', 'cancelled')
      this.fail(this.aborted)
      return
    }
    this.peer = peer
    const host = peer.host.includes(':') ? `[${peer.host}]` : peer.host
    const opts = { ...this.opts, origin: `${this.protocol}//${host}:${peer.port}`, headers: this.headersWithHost }
    const remaining = this.call.remainingMs
    const attempt = this.legacy ? new LegacyAttempt(this) : new NewStyleAttempt(this)
    this.attempt = attempt
    this.mode = 'sending'
    if (remaining !== null) {
      // The rule's timeout, to the response's head: undici's own timers tick once a
      // second, so this one is a timer of its own.
      const own = typeof this.opts.headersTimeout === 'number' ? this.opts.headersTimeout : Infinity
      opts.headersTimeout = Math.max(1, Math.ceil(Math.min(own, remaining)))
      attempt.timer = setTimeout(() => {
        attempt.timer = null
        attempt.abort(new undici.errors.HeadersTimeoutError(`the request rule's timeout (${this.dispatcher._rule.spec}) passed`))
      }, Math.max(1, Math.ceil(remaining)))
      attempt.timer.unref?.()
    }
    try {
      this.dispatcher._inner.dispatch(opts, attempt)
    } catch (err) {
      this.failed(attempt, err)
    }
  }

  abortByCaller(reason) {
    if (this.aborted !== undefined || this.mode === 'done') return
    this.aborted = reason ?? new undici.errors.RequestAbortedError()
    if (this.attempt !== null) this.attempt.abort(this.aborted)
  }

  connected(attempt, context) {
    if (attempt !== this.attempt) return
    if (this.aborted !== undefined) {
      attempt.abort(this.aborted)
      return
    }
    if (this.started) return
    this.started = true
    if (this.callerNewStyle) this.caller.onRequestStart?.(this.controller, context)
    else this.caller.onConnect?.((reason) => this.abortByCaller(reason), context)
  }

  /** Forwards a legacy-only notification to a legacy caller (while not discarding). */
  forward(name, arg) {
    if (this.mode === 'discarding' || this.callerNewStyle) return
    this.caller[name]?.(arg)
  }

  classify(response, err) {
    const classify = this.dispatcher._classify
    if (classify === null) return null
    const o = this.opts
    return classify({ method: o.method, origin: String(o.origin), path: o.path, peer: this.peer.peer }, response, err) ?? null
  }

  headers(attempt, statusCode, raw, parsed, statusText) {
    clearAttemptTimer(attempt)
    if (attempt !== this.attempt || this.mode !== 'sending') return true
    let outcome = null
    if (this.dispatcher._classify !== null) {
      const headers = parsed ?? undici.util.parseHeaders(raw)
      outcome = this.classify({ statusCode, headers, statusText }, null)
    }
    if (this.call.report(statusCode, null, outcome)) {
      let chosen
      try {
        chosen = this.call.choose()
      } catch {
        chosen = null
      }
      if (chosen !== null && typeof chosen.then !== 'function') {
        this.next = chosen
        this.mode = 'discarding'
        return true
      }
      if (chosen !== null) {
        // No peer right now: hold this response until the list answers.
        this.mode = 'waiting'
        this.whenChosen(
          chosen,
          (peer) => {
            this.next = peer
            this.mode = 'discarding'
            attempt.resume()
            if (attempt.ended) this.send(peer)
          },
          () => {
            this.toCaller(statusCode, raw, parsed, statusText)
            attempt.resume()
            if (attempt.ended) this.endToCaller(attempt.trailers)
          },
        )
        return false
      }
    }
    return this.toCaller(statusCode, raw, parsed, statusText)
  }

  toCaller(statusCode, raw, parsed, statusText) {
    this.mode = 'forwarding'
    if (this.callerNewStyle) {
      this.caller.onResponseStart?.(this.controller, statusCode, parsed ?? undici.util.parseHeaders(raw), statusText)
      return !this.controller.paused
    }
    const resume = () => this.attempt.resume()
    return this.caller.onHeaders?.(statusCode, raw ?? rawHeaders(parsed), resume, statusText)
  }

  data(attempt, chunk) {
    if (attempt !== this.attempt) return true
    if (this.mode === 'forwarding') {
      if (this.callerNewStyle) {
        this.caller.onResponseData?.(this.controller, chunk)
        return !this.controller.paused
      }
      return this.caller.onData?.(chunk)
    }
    return true
  }

  complete(attempt, rawTrailers, trailers) {
    if (attempt !== this.attempt) return
    attempt.ended = true
    attempt.trailers = rawTrailers ?? trailers
    if (this.mode === 'discarding') {
      this.send(this.next)
    } else if (this.mode === 'forwarding') {
      this.endToCaller(attempt.trailers)
    }
  }

  endToCaller(trailers) {
    this.mode = 'done'
    if (this.callerNewStyle) {
      const parsed = Array.isArray(trailers) ? undici.util.parseHeaders(trailers) : (trailers ?? {})
      this.caller.onResponseEnd?.(this.controller, parsed)
    } else {
      this.caller.onComplete?.(Array.isArray(trailers) ? trailers : rawHeaders(trailers))
    }
  }

  upgraded(attempt, statusCode, raw, parsed, socket) {
    clearAttemptTimer(attempt)
    if (attempt !== this.attempt) return
    this.call.report(statusCode, null, null)
    this.mode = 'done'
    if (this.callerNewStyle) {
      this.caller.onRequestUpgrade?.(this.controller, statusCode, parsed ?? undici.util.parseHeaders(raw), socket)
    } else {
      this.caller.onUpgrade?.(statusCode, raw ?? rawHeaders(parsed), socket)
    }
  }

  failed(attempt, err) {
    clearAttemptTimer(attempt)
    if (attempt !== this.attempt || this.mode === 'done') return
    attempt.ended = true
    if (this.mode === 'discarding') {
      // The retried response broke while it was read and dropped: the next peer was chosen.
      this.send(this.next)
      return
    }
    if (this.mode === 'forwarding' || this.mode === 'waiting') {
      this.fail(err)
      return
    }
    let [kind, outcome] = errorKind(err)
    if (this.aborted !== undefined) outcome = 'cancelled'
    else outcome = this.classify(null, err) ?? outcome
    if (!this.call.report(null, kind, outcome)) {
      this.fail(err)
      return
    }
    let chosen
    try {
      chosen = this.call.choose()
    } catch {
      this.fail(err)
      return
    }
    this.whenChosen(chosen, (peer) => this.send(peer), () => this.fail(err))
  }

  /** Ends the request with `err` for the caller. */
  fail(err) {
    if (this.mode === 'done') return
    this.mode = 'done'
    if (this.callerNewStyle) {
      if (typeof this.caller.onResponseError === 'function') this.caller.onResponseError(this.controller, err)
      else throw err
    } else if (typeof this.caller.onError === 'function') {
      this.caller.onError(err)
    } else {
      throw err
    }
  }
}

/**
 * An undici Dispatcher balancing every request over `list` (a started `PeerList`).
 * Options: `rule` (a `RequestRule`; default the core's defaults, with a retry budget of
 * this dispatcher's own), `classify(request, response, error)` (returns 'ok', 'failure',
 * 'declined', 'cancelled' or null to keep the rule's outcome), `inner` (the dispatcher
 * that sends each attempt; default `new undici.Agent(agentOptions)`), `agentOptions`.
 */
class Dispatcher extends undici.Dispatcher {
  constructor(list, options) {
    super()
    if (!(list instanceof peerlb.PeerList)) throw typeError('new Dispatcher(list, options): list must be a PeerList')
    const o = options ?? {}
    if (typeof o !== 'object') throw typeError('new Dispatcher(list, options): options must be an object')
    if (o.rule !== undefined && o.rule !== null && !(o.rule instanceof RequestRule)) {
      throw typeError('new Dispatcher: rule must be a RequestRule')
    }
    if (o.classify !== undefined && o.classify !== null && typeof o.classify !== 'function') {
      throw typeError('new Dispatcher: classify must be a function')
    }
    if (o.inner !== undefined && o.inner !== null && typeof o.inner.dispatch !== 'function') {
      throw typeError('new Dispatcher: inner must be an undici Dispatcher')
    }
    this._list = list
    this._rule = o.rule ?? new RequestRule()
    this._classify = o.classify ?? null
    this._inner = o.inner ?? new undici.Agent(o.agentOptions)
  }

  /** undici's dispatch: starts the request; its progress goes to `handler`. */
  dispatch(opts, handler) {
    if (handler === null || typeof handler !== 'object') throw typeError('dispatch(opts, handler): handler must be an object')
    let request
    try {
      if (opts === null || typeof opts !== 'object') throw typeError('dispatch(opts, handler): opts must be an object')
      request = new BalancedRequest(this, opts, handler)
    } catch (err) {
      if (isNewStyle(handler)) {
        if (typeof handler.onResponseError !== 'function') throw err
        handler.onResponseError(null, err)
      } else if (typeof handler.onError === 'function') {
        handler.onError(err)
      } else {
        throw err
      }
      return true
    }
    request.start()
    return true
  }

  /** Closes the inner dispatcher (in-flight requests finish). */
  close(callback) {
    return this._inner.close(callback)
  }

  /** Destroys the inner dispatcher (in-flight requests fail with `err`). */
  destroy(err, callback) {
    return this._inner.destroy(err, callback)
  }
}

module.exports = { Dispatcher, RequestRule }
