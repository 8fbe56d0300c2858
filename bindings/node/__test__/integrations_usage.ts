// Type-checked (tsc --noEmit) against undici.d.ts and http.d.ts by `make test`; never run.
import * as http from 'node:http'
import { fetch as undiciFetch, request, setGlobalDispatcher } from 'undici'
import { PeerList, RequestRule, RetryBudget, type Outcome } from '../index.js'
import { Dispatcher, type Classifier } from '../undici.js'
import { Agent, HttpsAgent, type Classifier as AgentClassifier } from '../http.js'

const list = new PeerList({ strategy: 'fewest-pending' })
list.update({ add: ['10.0.0.1:8080', '10.0.0.2:8080'] })
list.start()

const rule = new RequestRule({
  failureStatuses: '502-504,429',
  maxAttempts: 2,
  timeoutMs: 1500,
  budget: new RetryBudget({ ratio: 0.1 }),
  retryAnyMethod: false,
})
const spec: string = rule.spec
const attempts: number = rule.maxAttempts
void [spec, attempts, new RequestRule(), new RequestRule({ budget: false, failureStatuses: [503] })]

const classify: Classifier = (req, res, err) => {
  const peer: string = req.peer
  void peer
  if (err !== null) return err.message.includes('refused') ? 'failure' : null
  const outcome: Outcome | null = res !== null && res.statusCode === 429 ? 'declined' : null
  return outcome
}
const dispatcher = new Dispatcher(list, { rule, classify, agentOptions: { connections: 16 } })

async function main(): Promise<void> {
  const r = await fetch('http://orders.internal/v1', { dispatcher } as RequestInit)
  const u = await undiciFetch('http://orders.internal/v1', { dispatcher })
  const q = await request('http://orders.internal/v1', { dispatcher, method: 'POST', body: '{}', idempotent: true })
  void [r.status, u.status, q.statusCode]
  setGlobalDispatcher(dispatcher)
  await dispatcher.close()
}
void main

const agentClassify: AgentClassifier = (req, res) => (res?.statusCode === 503 ? 'declined' : undefined)
const agent = new Agent(list, { rule, classify: agentClassify, keepAlive: true, maxSockets: 32 })
http.get('http://orders.internal/v1', { agent }, (res) => res.resume())
const secure = new HttpsAgent(list, { ca: 'PEM', rejectUnauthorized: true })
void secure
