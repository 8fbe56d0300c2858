// Types of `peerlb/http`: an http.Agent (and https.Agent) balancing every request over a
// PeerList with the core's request rule (see http.js).

import type * as http from 'node:http'
import type * as https from 'node:https'
import type { Outcome, PeerList } from './index'
import { RequestRule } from './native'

export { RequestRule }
export type { RequestRuleOptions } from './native'

/**
 * Overrides the rule's outcome of a request: `res` is set when the peer answered (its body
 * not read yet), `error` when it did not. Return null (or undefined) to keep the rule's.
 */
export type Classifier = (
  req: http.ClientRequest,
  res: http.IncomingMessage | null,
  error: Error | null,
) => Outcome | null | undefined

export interface BalancingOptions {
  /** The request rule (default: the core's defaults, with a retry budget of this agent's own). */
  rule?: RequestRule | null
  classify?: Classifier | null
}

export interface AgentOptions extends http.AgentOptions, BalancingOptions {}

export interface HttpsAgentOptions extends https.AgentOptions, BalancingOptions {}

/**
 * An http.Agent balancing every request over `list` (a started PeerList); keep-alive is on
 * unless `keepAlive: false`. A connection that cannot be made goes to another peer; a
 * request that was sent is not sent again (the caller owns it).
 */
export declare class Agent extends http.Agent {
  constructor(list: PeerList, options?: AgentOptions)
}

/** `Agent` for https: the TLS server name and certificate name are the URL's host. */
export declare class HttpsAgent extends https.Agent {
  constructor(list: PeerList, options?: HttpsAgentOptions)
}
