// Types of `peerlb/undici`: an undici Dispatcher balancing every request over a PeerList
// with the core's request rule (see undici.js).

import type { Agent, Dispatcher as UndiciDispatcher } from 'undici'
import type { Outcome, PeerList } from './index'
import { RequestRule } from './native'

export { RequestRule }
export type { RequestRuleOptions } from './native'

/** What a classifier is told about the request. */
export interface BalancedRequestInfo {
  method: string
  /** The request's origin as given (the service's, e.g. 'http://orders.internal'). */
  origin: string
  path: string
  /** The peer the attempt went to ('10.0.0.1:8080'). */
  peer: string
}

/** What a classifier is told about a response (its body not read yet). */
export interface BalancedResponseInfo {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  statusText: string
}

/**
 * Overrides the rule's outcome of an attempt: `response` is set when the peer answered,
 * `error` when it did not. Return null (or undefined) to keep the rule's outcome.
 */
export type Classifier = (
  request: BalancedRequestInfo,
  response: BalancedResponseInfo | null,
  error: Error | null,
) => Outcome | null | undefined

export interface DispatcherOptions {
  /** The request rule (default: the core's defaults, with a retry budget of this dispatcher's own). */
  rule?: RequestRule | null
  classify?: Classifier | null
  /** The dispatcher that sends each attempt (default `new undici.Agent(agentOptions)`). */
  inner?: UndiciDispatcher | null
  agentOptions?: Agent.Options
}

/**
 * An undici Dispatcher balancing every request over `list` (a started PeerList): use it
 * with `fetch(url, {dispatcher})`, `undici.request(url, {dispatcher})` or
 * `setGlobalDispatcher(dispatcher)`.
 */
export declare class Dispatcher extends UndiciDispatcher {
  constructor(list: PeerList, options?: DispatcherOptions)
}
