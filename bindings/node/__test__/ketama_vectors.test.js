// peerlb's hash-ring maps every key of tests/vectors/ketama.jsonl to the owner that npm
// `hashring` and Python `uhashring` (hash_fn="ketama") give it, through the Node package.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { PeerList } = require('..')

const file = path.resolve(__dirname, '../../../tests/vectors/ketama.jsonl')

test('ketama agrees with hashring and uhashring on every key', () => {
  const sets = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  assert.ok(sets.length >= 6)
  let checked = 0
  for (const s of sets) {
    const list = new PeerList({ strategy: 'hash-ring', shuffle: true, seed: 7 })
    list.update({ add: s.nodes.map(([id, weight]) => ({ id, weight })) })
    list.start()
    s.keys.forEach((key, i) => {
      const c = list.choose({ shardKey: key })
      assert.equal(c.peer, s.nodes[s.owners[i]][0], `${s.name}: key ${JSON.stringify(key)}`)
      c.finish()
      checked++
    })
    list.stop()
  }
  assert.ok(checked >= 60000)
})
