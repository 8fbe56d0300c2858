// peerlb/http: an http.Agent (and an https.Agent) that sends every request to the peer a
// PeerList chooses, judged by the core's request rule.
//
//   const { Agent } = require('peerlb/http')
//   const agent = new Agent(list)
//   http.get('http://orders.internal/v1/orders', { agent }, (res) => ...)
//   axios.get(url, { httpAgent: agent }); got(url, { agent: { http: agent } })
//
// The agent rewrites only where the connection goes: the request keeps its URL, its Host
// header and (with HttpsAgent) the URL's host as TLS server name, which Node takes from the
// Host header. Connections are pooled per peer (keep-alive on by default, as Node's global
// agent). Each request's outcome and latency (to the response's head) are reported to the
// list (connect errors, resets, timeouts and 5xx are failures of the peer).
//
// An agent hands out sockets; the request object belongs to the caller, so a request that
// was sent cannot be sent again from here. What the agent can do is the part of the rule
// that needs no resend: a connection that cannot be made (refused, unreachable) is made to
// another peer instead, for any method, while the rule allows (attempts, timeout, budget).
// For retries of failed responses use `peerlb/undici` or `PeerList.retry`.
'use strict'

const http = require('node:http')
const https = require('node:https')
const tls = require('node:tls')

const peerlb = require('./index.js')

const { RequestRule, _native: native } = peerlb
const { NativeRequestCall } = native

const kBalanced = Symbol('peerlb.balanced')
const kPoolPeer = Symbol('peerlb.poolPeer')
const kPeer = Symbol('peerlb.peer')

function warn(message) {
  process.emitWarning(message, { type: 'PeerlbWarning', code: 'PEERLB_HTTP_REPORT' })
}

/**
 * Ends a request that will get no socket with `err`, the way Node's own agent does for a
 * socket it could not create (`req.destroy` alone emits nothing before a socket exists).
 */
function failRequest(req, err) {
  if (typeof req.onSocket === 'function') req.onSocket(null, err)
  else process.nextTick(() => req.destroy(err))
}

function typeError(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_ARG_TYPE'
  return e
}

/** The request rule's name for a socket or request error, and an outcome when the peer is not to blame. */
function errorKind(err) {
  switch (err?.code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return ['connect-failed', null]
    case 'ETIMEDOUT':
      return ['timed-out', null]
    case 'ECONNRESET':
    case 'EPIPE':
      return ['reset', null]
    case 'ABORT_ERR':
    case 'ERR_INVALID_ARG_TYPE':
    case 'ERR_INVALID_ARG_VALUE':
      return ['failed', 'cancelled']
    default:
      return ['failed', null]
  }
}

/** One request through the agent: its call under the rule and the peer it is on. */
class BalancedAgentRequest {
  constructor(agent, req) {
    this.agent = agent
    this.req = req
    // Sent once (the caller owns the request): only a failed connect moves it elsewhere.
    this.call = new NativeRequestCall(agent._rule, agent._list, req.method, true, null, true)
    this.peer = null
    this.reported = false
    this.error = null
    this.timedOut = false
  }

  /** Listens to the request for how it ends, without changing what the caller sees. */
  watch() {
    const req = this.req
    req.once('response', (res) => {
      this.responded(res)
      // Node drops a response nobody listens for; this listener must not change that.
      if (req.listenerCount('response') === 0) res.resume()
    })
    const onError = (err) => {
      this.error ??= err
      // An 'error' nobody else listens for throws, as it would without this listener.
      if (req.listenerCount('error') === 1) throw err
    }
    req.on('error', onError)
    req.once('timeout', () => {
      this.timedOut = true
    })
    req.once('close', () => this.ended(this.error ?? req.errored ?? req.socket?.errored ?? null))
  }

  /** The caller's classifier's outcome, or null; one that throws is reported as a warning. */
  classify(res, err) {
    const classify = this.agent._classify
    if (classify === null) return null
    try {
      return classify(this.req, res, err) ?? null
    } catch (e) {
      warn(`a peerlb/http classify function threw: ${e?.message ?? e}`)
      return null
    }
  }

  /** Reports the attempt; from an event listener, so a failure is a warning, not a throw. */
  report(status, kind, outcome) {
    try {
      return this.call.report(status, kind, outcome)
    } catch (e) {
      warn(`peerlb/http could not report a request: ${e?.message ?? e}`)
      return false
    }
  }

  /** Reports the response (its head arrived). */
  responded(res) {
    if (this.reported) return
    this.reported = true
    this.report(res.statusCode, null, this.classify(res, null))
  }

  /** Reports how a request that got no response ended (`err` null and no timeout: the caller aborted it). */
  ended(err) {
    if (this.reported) return
    this.reported = true
    if (this.peer === null) return // no peer was chosen yet: nothing to report
    if (this.timedOut) {
      this.report(null, 'timed-out', this.classify(null, err))
      return
    }
    if (err === null || err === undefined) {
      this.report(null, 'failed', 'cancelled')
      return
    }
    const [kind, outcome] = errorKind(err)
    this.report(null, kind, this.classify(null, err) ?? outcome)
  }
}

/** The agent methods both agents share; `Base` is http.Agent or https.Agent. */
function balancing(Base, name) {
  return class extends Base {
    constructor(list, options) {
      if (!(list instanceof peerlb.PeerList)) throw typeError(`new ${name}(list, options): list must be a PeerList`)
      const o = options ?? {}
      if (typeof o !== 'object') throw typeError(`new ${name}(list, options): options must be an object`)
      const { rule, classify, ...agentOptions } = o
      if (rule !== undefined && rule !== null && !(rule instanceof RequestRule)) {
        throw typeError(`new ${name}: rule must be a RequestRule`)
      }
      if (classify !== undefined && classify !== null && typeof classify !== 'function') {
        throw typeError(`new ${name}: classify must be a function`)
      }
      super({ keepAlive: true, ...agentOptions })
      this._list = list
      this._rule = rule ?? new RequestRule()
      this._classify = classify ?? null
    }

    /** Chooses the request's peer, then lets the agent find or make a socket to it. */
    addRequest(req, options) {
      let balanced
      let chosen
      try {
        balanced = new BalancedAgentRequest(this, req)
        chosen = balanced.call.choose()
      } catch (err) {
        failRequest(req, err)
        return
      }
      balanced.watch()
      const go = (peer) => {
        balanced.peer = peer
        super.addRequest(req, { ...options, host: peer.host, port: peer.port, [kBalanced]: balanced })
      }
      if (typeof chosen.then !== 'function') {
        go(chosen)
        return
      }
      const none = (err) => {
        balanced.reported = true
        failRequest(req, err)
      }
      chosen.then((v) => (v instanceof Error ? none(v) : go(v)), none)
    }

    /**
     * Connects to the request's peer; when the connection cannot be made, reports it and
     * connects to another peer while the rule allows, then hands the socket over.
     */
    createConnection(options, oncreate) {
      const balanced = options[kBalanced]
      if (balanced === undefined) return super.createConnection(options, oncreate)
      const poolPeer = balanced.peer.peer
      const attempt = (peer) => {
        const socket = super.createConnection({ ...options, host: peer.host, port: peer.port })
        const connectEvent = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect'
        const onError = (err) => {
          socket.removeListener(connectEvent, onConnect)
          socket.destroy()
          const [kind, outcome] = errorKind(err)
          if (kind !== 'connect-failed' || !balanced.report(null, kind, balanced.classify(null, err) ?? outcome)) {
            if (kind === 'connect-failed') balanced.reported = true
            oncreate(err)
            return
          }
          let chosen
          try {
            chosen = balanced.call.choose()
          } catch {
            balanced.reported = true
            oncreate(err)
            return
          }
          const next = (p) => {
            balanced.peer = p
            attempt(p)
          }
          if (typeof chosen.then !== 'function') next(chosen)
          else chosen.then((v) => (v instanceof Error ? oncreate(err) : next(v)), () => oncreate(err))
        }
        const onConnect = () => {
          socket.removeListener('error', onError)
          socket[kPoolPeer] = poolPeer
          socket[kPeer] = peer.peer
          oncreate(null, socket)
        }
        socket.once('error', onError)
        socket.once(connectEvent, onConnect)
      }
      attempt(balanced.peer)
      return undefined
    }

    /** Keeps a free socket only in its own peer's pool (one connected elsewhere after a failed connect is closed). */
    keepSocketAlive(socket) {
      if (socket[kPoolPeer] !== socket[kPeer]) return false
      return super.keepSocketAlive(socket)
    }
  }
}

/**
 * An http.Agent balancing every request over `list` (a started `PeerList`). Options:
 * `rule` (a `RequestRule`), `classify(req, res, err)`, and http.Agent's own (keepAlive is
 * on unless set to false).
 */
const Agent = balancing(http.Agent, 'Agent')

/** `Agent` for https: the TLS server name and certificate name are the URL's host. */
const HttpsAgent = balancing(https.Agent, 'HttpsAgent')

module.exports = { Agent, HttpsAgent, RequestRule }
