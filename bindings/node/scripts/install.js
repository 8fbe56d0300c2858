#!/usr/bin/env node
// The package's install script. A published package carries the addon prebuilt for
// linux-x64-gnu (glibc >= 2.17) in prebuilds/; when it matches this machine (and loads), it
// is used and nothing is compiled. Otherwise, or with `npm install --build-from-source`,
// the addon is built from the package's Rust sources with cargo (scripts/build.js), and
// this script says why.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const dest = path.join(pkgDir, 'peerlb.node')
/** The oldest glibc the prebuilt linux-x64-gnu addon is linked for. */
const PREBUILT_GLIBC = [2, 17]

/** This machine as prebuilds/ names platforms, and its glibc version (null: none). */
function platform() {
  if (process.platform !== 'linux') return { key: `${process.platform}-${process.arch}`, glibc: null }
  const runtime = process.report?.getReport?.()?.header?.glibcVersionRuntime
  const glibc = typeof runtime === 'string' ? runtime.split('.').map(Number) : null
  return { key: `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`, glibc }
}

function newEnough(glibc, min) {
  if (glibc === null) return false
  return glibc[0] > min[0] || (glibc[0] === min[0] && (glibc[1] ?? 0) >= min[1])
}

/** Why the prebuilt addon cannot be used here, or null when it can. */
function whyNotPrebuilt({ key, glibc }, prebuilt) {
  if (process.env.npm_config_build_from_source === 'true') return 'asked to build from source'
  if (!fs.existsSync(prebuilt)) return `no prebuilt addon for ${key}`
  if (key === 'linux-x64-gnu' && !newEnough(glibc, PREBUILT_GLIBC)) {
    return `glibc ${glibc?.join('.')} is older than the prebuilt addon's ${PREBUILT_GLIBC.join('.')}`
  }
  return null
}

function main() {
  const here = platform()
  const prebuilds = path.join(pkgDir, 'prebuilds')
  const prebuilt = path.join(prebuilds, here.key, 'peerlb.node')
  let why = whyNotPrebuilt(here, prebuilt)
  if (why === null) {
    const tmp = `${dest}.${process.pid}.tmp`
    fs.copyFileSync(prebuilt, tmp)
    fs.renameSync(tmp, dest)
    try {
      require(dest)
      console.log(`peerlb: using the prebuilt addon for ${here.key} (no Rust toolchain needed)`)
      return
    } catch (err) {
      fs.rmSync(dest, { force: true })
      why = `the prebuilt addon for ${here.key} does not load here (${err.message})`
    }
  }
  // In the source tree there are no prebuilds: build quietly, as always.
  if (fs.existsSync(prebuilds)) console.log(`peerlb: ${why}; building the addon from source with cargo`)
  const res = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit' })
  process.exit(res.status ?? 1)
}

main()
