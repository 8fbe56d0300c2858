// Type-checked (tsc --noEmit) against index.d.ts by `make test`; never run.
declare const console: { log(...args: unknown[]): void } // no @types/node needed
import { PeerList, errorCodes, type Choice, type PeerlbError, type Transport, type Subscriber } from '../index.js'

const subs = new Map<string, Subscriber>()
const transport: Transport = {
  name: 'typed',
  retain(peerId: string, subscriber: Subscriber) {
    subs.set(peerId, subscriber)
    const took: boolean = subscriber.setStatus('connecting')
    void took
  },
  release(peerId: string) {
    subs.delete(peerId)
  },
}

const list = new PeerList({ strategy: 'fewest-pending', shuffle: false, seed: 42n, failFast: false, transport })
list.update({ add: ['10.0.0.1:80', { id: '10.0.0.2:80', weight: 2 }], remove: [] })
list.start()
subs.get('10.0.0.1:80')?.setStatus('available')

const choice: Choice = list.choose({ timeoutMs: 100, shardKey: 'user-1' })
const peer: string = choice.peer
choice.finish('failure', 12)
choice.finish()

async function main(): Promise<void> {
  try {
    const c = await list.chooseAsync({ timeoutMs: 1000 })
    c.finish('ok', 3.5)
  } catch (err) {
    const e = err as PeerlbError
    if (e.code === 'PEERLB_TIMEOUT' || e.code === 'PEERLB_NO_PEER_AVAILABLE') console.log(e.message)
    for (const part of e.errors ?? []) console.log(part.code)
  }
  {
    using c = list.choose()
    console.log(c.peer, c.finished)
  }
  const info = list.introspect()
  const total: number = info.total
  const states: string[] = info.peers.map((p) => `${p.id}=${p.status}/${p.pending}`)
  console.log(peer, total, states, errorCodes['timeout'], list.running)
  list.stop()
}
void main()

// @ts-expect-error: outcome must be one of the four
choice.finish('meh')
// @ts-expect-error: timeoutMs is a number
list.choose({ timeoutMs: '10' })
// @ts-expect-error: a transport needs release
new PeerList({ transport: { retain() {} } })

// Upstream (types only)
import { Upstream } from '..'
const upstream = new Upstream({
  backends: ['127.0.0.1:1'],
  check: async (b: string) => b.length > 0,
  intervalMs: 500,
  timeoutMs: 50,
  lowScore: -2,
})
const picked: string = upstream.pick()
const sc: number | undefined = upstream.score(picked)
const all: Record<string, number> = upstream.scores()
void upstream.checkNow().then(() => upstream.shutdown())
void sc
void all
new Upstream({ backends: [], check: 'tcp-probe', manual: true }).shutdown()
// Updaters
import { StaticUpdater, FileUpdater, DnsUpdater, type Binding } from '../index.js'
const ulist = new PeerList({ strategy: 'weighted-round-robin' })
const bindings: Binding[] = [
  new StaticUpdater(['a:1', { id: 'b:1', weight: 2 }]).bind(ulist).start(),
  new FileUpdater('/etc/peers', { pollIntervalMs: 100, maxSize: 1 << 20 }).bind(ulist),
  new DnsUpdater('_http._tcp.example.', { nameserver: '127.0.0.1:53', minIntervalMs: 500 }).bind(ulist),
  new DnsUpdater('backends.example.', { record: 'a', port: 8080, emptyThreshold: 5 }).bind(ulist),
]
for (const b of bindings) {
  const err: PeerlbError | null = b.lastError
  const peers: Array<{ id: string; weight: number }> = b.peers()
  const n: number = b.stats().goodReads
  console.log(b.source, b.running, err?.code, peers.length, n)
  if (b.running) b.stop()
}
import { EtcdUpdater } from '../index.js'
const etcdUpdater = new EtcdUpdater(['http://127.0.0.1:2379'], '/svc/', { timeoutMs: 500, retryIntervalMs: 100 })
void etcdUpdater
// Ejection, manual clock, admin, events, retry
import { ManualClock, RetryBudget, declined, AdminResult, type PeerEvent, type PeerIntrospection } from '../index.js'
const clock = new ManualClock()
const elist = new PeerList({ clock, ejection: { failures: 3, baseMs: 100, maxMs: 1000, maxPercent: 50, panicPercent: 0 } })
new PeerList({ ejection: false, clock: 'real' })
const sub = elist.subscribe((e: PeerEvent) => {
  if (e.kind === 'ejected' || e.kind === 'restored') console.log(e.peer, e.detail)
})
clock.advance(100)
const st: 'success' | 'no-action-required' = elist.disable('a:1')
const ar: AdminResult = elist.admin('reset', 'a:1')
if (ar.status === 'failed') console.log(ar.code, ar.message)
const backends: PeerIntrospection[] = elist.listBackends()
const info2 = elist.introspect()
console.log(st, backends[0]?.ejected_for_ms, backends[0]?.admin, info2.panic, info2.ejections, clock.elapsedMs)
sub.unsubscribe()
const budget = new RetryBudget({ ratio: 0.1, minPerSec: 5, ttlMs: 10000, clock })
async function retried(): Promise<number> {
  const n: number = await elist.retry(
    async (peer: string, attempt: number) => {
      if (attempt > 1) throw declined('busy')
      return peer.length
    },
    { maxAttempts: 3, timeoutMs: 1000, budget, shardKey: 'k' },
  )
  try {
    await elist.retry(() => 1)
  } catch (err) {
    const e = err as PeerlbError
    if (e.code === 'PEERLB_RETRY_EXHAUSTED' || e.code === 'PEERLB_DECLINED') console.log(e.cause, budget.balance)
  }
  return n
}
void retried
// @ts-expect-error: unknown admin action
elist.admin('frobnicate', 'a:1')
// @ts-expect-error: ejection options are numbers
new PeerList({ ejection: { failures: '3' } })
// @ts-expect-error: clock must be a ManualClock
new PeerList({ clock: 'manual' })
// Generated names, async forms, aliases
import { strategies, type StrategyName, type PeerlbErrorCode, type ListIntrospection } from '../index.js'
const names: readonly StrategyName[] = strategies
const one: StrategyName = 'peak-ewma'
// @ts-expect-error: not a strategy name
const notOne: StrategyName = 'fastest'
void notOne
const big = new PeerList({ strategy: 'hash-ring:ketama?bounded=1.25', seed: 7 })
const spec: string = big.strategy
async function asyncForms(): Promise<void> {
  await big.updateAsync({ add: ['a:1', { id: 'b:1', weight: 2 }] })
  await big.startAsync()
  const info: ListIntrospection = await big.introspectAsync()
  await big.stopAsync()
  const c = big.choose()
  c.release()
  const s = big.subscribe(() => undefined)
  const stopped: boolean = s.cancel()
  const code: PeerlbErrorCode = 'PEERLB_ALREADY_FINISHED'
  console.log(names.length, one, spec, info.total, stopped, code)
}
void asyncForms
function disposeBinding(): void {
  using b = new StaticUpdater(['a:1']).bind(ulist).start()
  console.log(b.running)
}
void disposeBinding

// Metrics, circuit breakers, the admin endpoint.
import { metrics, serveAdmin, type AdminServer } from '../index.js'
const named = new PeerList({ name: 'ts-list', maxPending: 10, maxPendingPerPeer: 2, metrics: true, peerLabels: false, transport: 'http-probe?path=/healthz' })
const listText: string = named.metrics()
const allText: string = metrics()
const info: ListIntrospection = named.introspect()
const limit: number | null = info.max_pending
console.log(named.name, listText.length, allText.length, limit, info.overloaded, errorCodes.overloaded)
function disposeAdmin(): void {
  using admin: AdminServer = serveAdmin(':0', { token: 's3cret' })
  console.log(admin.url, admin.port, admin.address)
}
void disposeAdmin
import { Session, adminResultCodes, type SessionEvent } from '../index.js'
async function sessions(): Promise<void> {
  const slist = new PeerList({ strategy: 'fewest-pending', capacity: 32 })
  slist.update({ add: ['a:1', 'b:1'] })
  slist.start()
  const heard = slist.subscribeSessions((e: SessionEvent) => console.log(e.kind, e.session, e.peer, e.reason))
  const s: Session = slist.openSession({ timeoutMs: 100, shardKey: 'user-1' })
  const id: number = s.id
  const moved: string = s.failover('reset', { timeoutMs: 100, remoteCode: 1006 })
  const later: string = await s.failoverAsync(null, { timeoutMs: 100 })
  s.ok()
  const asked: boolean = s.failoverRequested
  const e = s.decline('unauthorized', { remoteCode: 401 })
  const code: number | null = e.remoteCode
  const t: Session = await slist.openSessionAsync()
  t.close()
  const r: 'success' | 'no-action-required' = slist.failover('a:1')
  const n: 1 | 3 | 4 = slist.admin('failover', 'a:1').result
  const answer: string = slist.addBackend({ id: 'c:1', weight: 2 })
  const config: string = slist.backendConfig('c:1')
  const q: boolean = slist.available('c:1') && !slist.uninitialized('c:1')
  const counts: number[] = [slist.numAvailable(), slist.numUnavailable(), slist.numUninitialized()]
  const ids: string[] = slist.peers()
  const cap: number = slist.capacity
  const one: 1 = AdminResult.SUCCESS
  const failedNumber: number = adminResultCodes.failed
  heard.unsubscribe()
  console.log(id, moved, later, asked, code, r, n, answer, config, q, counts, ids, cap, one, failedNumber, e.peer)
}
void sessions
