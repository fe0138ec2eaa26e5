#!/usr/bin/env node
// Builds the native addon with cargo alone and puts it at bindings-node/e2b.node, plus the
// `sandboxd` and `envd` executables at bindings-node/bin/ for the embedded default (with no E2B
// settings the SDK starts that sandboxd when none answers on 127.0.0.1:49982; sandboxd finds
// envd next to itself when it builds the base template).
//
// Why not `napi build`: npm installs a linked folder (`npm install /path/to/repo`) without
// its dependencies, so an install script can rely on nothing but node and cargo. The napi
// CLI (a devDependency) is only needed to regenerate `native.d.ts` after changing the Rust
// surface (`npm run build:native`); the compiled addon is the same either way.
//
// Usage: node bindings-node/scripts/build.js [--debug]
// Env: CARGO (default "cargo"); CARGO_TARGET_DIR (default <repo>/target); E2B_SKIP_NATIVE_BUILD=1
// skips everything (e.g. when an addon was copied in by other means). E2B_BUILD_SANDBOXD: unset,
// sandboxd and envd are built but a failure there only warns (the addon still works with E2B's
// cloud or any running sandboxd); `1` makes that failure fatal; `0` builds only the addon.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const bindingDir = path.resolve(__dirname, '..')
const manifest = path.join(bindingDir, 'Cargo.toml')
const dest = path.join(bindingDir, 'e2b.node')

if (process.env.E2B_SKIP_NATIVE_BUILD === '1') {
  console.log('e2b: E2B_SKIP_NATIVE_BUILD=1, not building the native addon')
  process.exit(0)
}

const debug = process.argv.includes('--debug')
const cargo = process.env.CARGO || 'cargo'
const withServer = process.env.E2B_BUILD_SANDBOXD !== '0'
const serverRequired = process.env.E2B_BUILD_SANDBOXD === '1'
const packages = withServer ? ['e2b-node', 'sandboxd', 'envd'] : ['e2b-node']
// --keep-going: a broken sandboxd or envd must not stop the addon from being built.
const args = ['build', '--keep-going', '--manifest-path', manifest, '--message-format=json-render-diagnostics']
for (const p of packages) args.push('-p', p)
if (!debug) args.push('--release')

console.error(`e2b: building ${packages.join(', ')} (${debug ? 'debug' : 'release'}): ${cargo} ${args.join(' ')}`)
const res = spawnSync(cargo, args, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 })
if (res.error) {
  console.error(`e2b: could not run ${cargo}: ${res.error.message}`)
  console.error('e2b: the native addon is built from source; install Rust (https://rustup.rs) and retry.')
  process.exit(1)
}

// Cargo tells us where the cdylib landed, whatever CARGO_TARGET_DIR or profile is in use.
let lib
const executables = {}
for (const line of res.stdout.toString().split('\n')) {
  if (!line.startsWith('{')) continue
  const msg = JSON.parse(line)
  if (msg.reason !== 'compiler-artifact') continue
  if (msg.target?.name === 'e2b_node' && msg.target.kind.includes('cdylib')) {
    lib = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
  } else if (msg.executable && ['sandboxd', 'envd'].includes(msg.target?.name)) {
    executables[msg.target.name] = msg.executable
  }
}
if (!lib) {
  console.error(`e2b: the native addon did not build (cargo exited with ${res.status})`)
  process.exit(res.status || 1)
}
// Copy to a temp name then rename, so a running process keeps its mapped file intact.
function install(from, to, mode) {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  const tmp = `${to}.${process.pid}.tmp`
  fs.copyFileSync(from, tmp)
  if (mode) fs.chmodSync(tmp, mode)
  fs.renameSync(tmp, to)
  console.error(`e2b: ${path.relative(process.cwd(), to) || to} ready`)
}
install(lib, dest)
for (const name of withServer ? ['sandboxd', 'envd'] : []) {
  if (executables[name]) {
    install(executables[name], path.join(bindingDir, 'bin', name), 0o755)
    continue
  }
  console.error(`e2b: WARNING: ${name} did not build (see the errors above), so the embedded default`)
  console.error('e2b: (no E2B settings: start a local sandboxd) will not work; E2B_API_URL/E2B_API_KEY setups will.')
  if (serverRequired) process.exit(res.status || 1)
}
