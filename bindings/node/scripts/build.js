#!/usr/bin/env node
// Builds the native addon with cargo and puts it where index.js loads it (./peerlb.node).
// Runs as the package's `install` script, so `npm install ./bindings/node` works on a machine
// with a Rust toolchain; nothing is downloaded besides the crates cargo itself fetches.
//
//   node scripts/build.js            release build (default)
//   node scripts/build.js --debug    debug build
//
// PEERLB_ADDON_LINKER=<cc> links the addon (only the addon, not the crates it is built from)
// with that C compiler driver: `make` sets it to zig targeting glibc 2.17, so that the addon
// `make dist` ships loads on every glibc distribution since 2014.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const release = !process.argv.includes('--debug')

function findCargo() {
  if (process.env.CARGO) return process.env.CARGO
  const home = path.join(os.homedir(), '.cargo', 'bin', process.platform === 'win32' ? 'cargo.exe' : 'cargo')
  const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  if (probe.status === 0) return 'cargo'
  if (fs.existsSync(home)) return home
  console.error('peerlb: building the native addon needs a Rust toolchain (cargo); see https://rustup.rs')
  process.exit(1)
}

const linker = process.env.PEERLB_ADDON_LINKER
const args = [linker ? 'rustc' : 'build', '--manifest-path', path.join(pkgDir, 'Cargo.toml'), '--lib', '--message-format=json-render-diagnostics']
if (release) args.push('--release')
if (linker) args.push('--', '-C', `linker=${linker}`)
const res = spawnSync(findCargo(), args, { cwd: pkgDir, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 })
if (res.error) {
  console.error(`peerlb: cannot run cargo: ${res.error.message}`)
  process.exit(1)
}
if (res.status !== 0) {
  console.error('peerlb: cargo build of the native addon failed')
  process.exit(res.status || 1)
}
let artifact = null
for (const line of res.stdout.toString().split('\n')) {
  if (!line.startsWith('{')) continue
  const msg = JSON.parse(line)
  if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'peerlb_node') {
    artifact = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || artifact
  }
}
if (!artifact) {
  console.error('peerlb: cargo did not report the addon library (peerlb_node)')
  process.exit(1)
}
const dest = path.join(pkgDir, 'peerlb.node')
// Copy to a temp name and rename, so a running process that loaded the old file keeps it.
const tmp = `${dest}.${process.pid}.tmp`
fs.copyFileSync(artifact, tmp)
fs.renameSync(tmp, dest)
console.log(`peerlb: built ${path.relative(process.cwd(), dest) || dest} (${release ? 'release' : 'debug'})`)
