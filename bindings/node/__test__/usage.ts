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
