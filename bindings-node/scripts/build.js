#!/usr/bin/env node
// Builds the native addon with cargo alone and puts it at bindings-node/e2b.node, plus the
// `sandboxd` and `envd` executables at bindings-node/bin/ for the embedded default (with no E2B
// settings the SDK starts that sandboxd when none answers on 127.0.0.1:49982; sandboxd finds
// envd next to itself when it builds the base template).
//
// Why not `napi build`: npm installs a linked folder (`npm install /path/to/repo`) without
// its dependencies, so an install script can rely on nothing but node and cargo. The napi CLI
// (a devDependency) is only needed to regenerate `native.d.ts` after changing the Rust surface
// (`npm run build:native`); the compiled addon is the same either way.
//
// envd runs inside the guest VM, so it is linked statically (`+crt-static`, built for the host
// triple so the flag stays off build scripts), as scripts/lib.sh does: a dynamic envd built on a
// host with a newer glibc than the guest's Debian would not start there.
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

// A package made by scripts/package.sh carries the addon and binaries (prebuilt.json says so):
// installing it needs no Rust toolchain.
const prebuilt = path.join(bindingDir, 'prebuilt.json')
if (fs.existsSync(prebuilt) && fs.existsSync(path.join(bindingDir, 'e2b.node'))) {
  console.error('e2b: prebuilt native addon and sandboxd found, nothing to build')
  process.exit(0)
}

if (process.env.E2B_SKIP_NATIVE_BUILD === '1') {
  console.error('e2b: E2B_SKIP_NATIVE_BUILD=1, not building the native addon')
  process.exit(0)
}

const debug = process.argv.includes('--debug')
const cargo = process.env.CARGO || 'cargo'
const withServer = process.env.E2B_BUILD_SANDBOXD !== '0'
const serverRequired = process.env.E2B_BUILD_SANDBOXD === '1'

/** Run `cargo build` and return the status and the artifacts cargo reports, by target name. */
function cargoBuild(extraArgs, env = process.env) {
  const args = ['build', '--manifest-path', manifest, '--message-format=json-render-diagnostics', ...extraArgs]
  if (!debug) args.push('--release')
  console.error(`e2b: ${cargo} ${args.join(' ')}`)
  const res = spawnSync(cargo, args, { env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 })
  if (res.error) {
    console.error(`e2b: could not run ${cargo}: ${res.error.message}`)
    console.error('e2b: the native addon is built from source; install Rust (https://rustup.rs) and retry.')
    process.exit(1)
  }
  const artifacts = {}
  for (const line of res.stdout.toString().split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason !== 'compiler-artifact') continue
    if (msg.target.kind.includes('cdylib')) artifacts[msg.target.name] = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
    else if (msg.executable) artifacts[msg.target.name] = msg.executable
  }
  return { status: res.status, artifacts }
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

function hostTriple() {
  const out = spawnSync(process.env.RUSTC || 'rustc', ['-vV'], { encoding: 'utf8' }).stdout || ''
  return /^host: (\S+)$/m.exec(out)?.[1]
}

// 1. The addon. Each package gets its own cargo run: a sandboxd or envd that fails to build must
// not stop the addon, and sandboxd built alone keeps its own feature set (the very build the
// Python package's build script makes, so the two installs share it).
const addon = cargoBuild(['-p', 'e2b-node'])
if (!addon.artifacts.e2b_node) {
  console.error(`e2b: the native addon did not build (cargo exited with ${addon.status})`)
  process.exit(addon.status || 1)
}
install(addon.artifacts.e2b_node, path.join(bindingDir, 'e2b.node'))

// 2. sandboxd, and envd, static, for the guest.
if (withServer) {
  // In the target directory the Python package's build script uses for the same two binaries
  // (same flags), so `pip install .` then `npm install` builds them once.
  const embedded = ['--target-dir', path.join(process.env.CARGO_TARGET_DIR || path.join(bindingDir, '..', 'target'), 'embedded-sandboxd')]
  const sandboxd = cargoBuild(['-p', 'sandboxd', ...embedded])
  const triple = hostTriple()
  const rustflags = [process.env.RUSTFLAGS, '-C target-feature=+crt-static'].filter(Boolean).join(' ')
  const envd = triple
    ? cargoBuild(['-p', 'envd', '--target', triple, ...embedded], { ...process.env, RUSTFLAGS: rustflags })
    : { status: null, artifacts: {} }
  const built = { sandboxd: sandboxd.artifacts.sandboxd, envd: envd.artifacts.envd }
  for (const [name, file] of Object.entries(built)) {
    if (file) {
      install(file, path.join(bindingDir, 'bin', name), 0o755)
      continue
    }
    console.error(`e2b: WARNING: ${name} did not build (see the errors above), so the embedded default`)
    console.error('e2b: (no E2B settings: start a local sandboxd) will not work; E2B_API_URL/E2B_API_KEY setups will.')
    if (serverRequired) process.exit(1)
  }
}
