// The TypeScript types name the core's lists exactly: StrategyName and PeerlbErrorCode in
// the generated native.d.ts against the addon's (the core's) lists at run time, and every
// document that lists strategies lists all of them. (`make test` also checks that
// native.d.ts is what @napi-rs/cli generates from the Rust sources, and type-checks usage.ts.)
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const peerlb = require('..')

const pkgDir = path.resolve(__dirname, '..')
const read = (f) => fs.readFileSync(path.join(pkgDir, f), 'utf8')

/** The string literals of `export type <name> = 'a' | 'b' ...` in a .d.ts file. */
function union(dts, name) {
  const m = dts.match(new RegExp(`export type ${name} = ([^\\n]+)`))
  assert.ok(m, `no type ${name}`)
  return [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1])
}

test('StrategyName is the core list of strategies', () => {
  const core = peerlb._native.coreStrategyNames()
  assert.equal(core.length, 9)
  assert.deepEqual(union(read('native.d.ts'), 'StrategyName'), core)
  assert.deepEqual([...peerlb.strategies], core)
  assert.ok(Object.isFrozen(peerlb.strategies))
  for (const s of core) assert.equal(new peerlb.PeerList({ strategy: s }).strategy, s)
})

test('PeerlbErrorCode is the core list of error codes', () => {
  const codes = Object.values(peerlb.errorCodes)
  assert.deepEqual(union(read('native.d.ts'), 'PeerlbErrorCode'), codes)
  assert.deepEqual(peerlb._native.typedErrorCodes(), codes)
})

test('every document that lists the strategies lists all of them', () => {
  const core = peerlb._native.coreStrategyNames()
  const docs = {
    'README.md': read('README.md'),
    'native.d.ts (PeerListOptions.strategy)': read('native.d.ts').split('export interface PeerListOptions')[1].split('\n}')[0],
  }
  for (const [name, text] of Object.entries(docs)) {
    for (const s of core) assert.ok(text.includes(`'${s}`) || text.includes(`\`${s}`), `${name} does not name ${s}`)
  }
})
