// Compatibility check: the official E2B JS SDK against our envd, unchanged.
//
// Usage (as root, from the repo root): install the SDK somewhere, e.g.
//   npm install --prefix /tmp/jssdk e2b
//   NODE_PATH=/tmp/jssdk/node_modules node envd/tests/sdk_compat.mjs <path to envd>
//
// Like sdk_compat.py: a stub control plane answers POST /v2/sandboxes/{id}/connect
// with our envdVersion and an access token, envd gets the token through /init,
// and E2B_SANDBOX_URL sends every envd call to the envd started here.

import { spawn, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
// An absolute path: a bare 'e2b' would self-resolve to this repo's own package.
const sdkDir = (process.env.NODE_PATH || '/tmp/jssdk/node_modules').split(':')[0]
const { Sandbox, CommandExitError, FileNotFoundError } = require(path.join(sdkDir, 'e2b'))

const ENVD = process.argv[2] || 'target/envd/debug/envd'
const TOKEN = 'js-compat-token'

function check(name, cond) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}`)
  if (!cond) process.exit(1)
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port
      s.close(() => resolve(port))
    })
  })
}

const version = execFileSync(ENVD, ['--version']).toString().trim()
const api = http.createServer((req, res) => {
  req.resume()
  const id = req.url.split('/')[3]
  const body = JSON.stringify({ templateID: 'base', sandboxID: id, clientID: 'local', envdVersion: version, envdAccessToken: TOKEN })
  res.writeHead(200, { 'content-type': 'application/json' }).end(body)
})
await new Promise((r) => api.listen(0, '127.0.0.1', r))

// Root's home is a scratch dir so `bash -l` does not run the host's dotfiles.
const etc = mkdtempSync(path.join(os.tmpdir(), 'envd-js-etc-'))
mkdirSync(`${etc}/root`)
writeFileSync(`${etc}/passwd`, `root:x:0:0:root:${etc}/root:/bin/bash\n`)
writeFileSync(`${etc}/group`, 'root:x:0:\n')
const port = await freePort()
const envd = spawn(ENVD, ['--port', `${port}`, '--addr', '127.0.0.1', '--default-user', 'root', '--log', 'warn',
  '--passwd-file', `${etc}/passwd`, '--group-file', `${etc}/group`], { stdio: 'inherit' })
const url = `http://127.0.0.1:${port}`

try {
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${url}/health`)).status === 204) break } catch { await new Promise((r) => setTimeout(r, 50)) }
  }
  const init = await fetch(`${url}/init`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accessToken: TOKEN, envVars: { JS_VAR: 'from-init' } }) })
  check('/init', init.status === 204)

  const sbx = await Sandbox.connect('ijscompat', {
    apiKey: 'e2b_' + '0'.repeat(40), apiUrl: `http://127.0.0.1:${api.address().port}`, sandboxUrl: url,
  })

  const r = await sbx.commands.run('echo hi $JS_VAR')
  check('commands.run', r.stdout === 'hi from-init\n' && r.exitCode === 0)
  try {
    await sbx.commands.run('echo bad >&2; exit 5')
    check('failing command throws', false)
  } catch (e) {
    check('failing command throws', e instanceof CommandExitError && e.exitCode === 5 && e.stderr === 'bad\n')
  }
  const h = await sbx.commands.run('sleep 30', { background: true })
  check('list', (await sbx.commands.list()).some((p) => p.pid === h.pid))
  check('kill', (await sbx.commands.kill(h.pid)) === true)
  check('kill unknown', (await sbx.commands.kill(999999)) === false)

  const cat = await sbx.commands.run('cat', { background: true, stdin: true })
  await sbx.commands.sendStdin(cat.pid, 'piped\n')
  await sbx.commands.closeStdin(cat.pid)
  check('stdin', (await cat.wait()).stdout === 'piped\n')

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'envd-js-'))
  await sbx.files.write(`${tmp}/d/a.txt`, 'hello')
  check('files.read', (await sbx.files.read(`${tmp}/d/a.txt`)) === 'hello')
  const bytes = new Uint8Array(5000).map((_, i) => i % 251)
  await sbx.files.write(`${tmp}/b.bin`, bytes.buffer)
  const back = await sbx.files.read(`${tmp}/b.bin`, { format: 'bytes' })
  check('binary round-trip', back.length === bytes.length && back.every((v, i) => v === bytes[i]))
  check('exists', (await sbx.files.exists(`${tmp}/d/a.txt`)) && !(await sbx.files.exists(`${tmp}/nope`)))
  check('makeDir', (await sbx.files.makeDir(`${tmp}/n`)) === true && (await sbx.files.makeDir(`${tmp}/n`)) === false)
  check('list', (await sbx.files.list(tmp)).map((e) => e.name).sort().join(',') === 'b.bin,d,n')
  const moved = await sbx.files.rename(`${tmp}/d/a.txt`, `${tmp}/m.txt`)
  check('rename', moved.name === 'm.txt')
  const info = await sbx.files.getInfo(`${tmp}/m.txt`)
  check('getInfo', info.size === 5 && info.type === 'file' && info.modifiedTime instanceof Date)
  await sbx.files.remove(`${tmp}/m.txt`)
  try {
    await sbx.files.read(`${tmp}/m.txt`)
    check('read missing throws', false)
  } catch (e) {
    check('read missing throws', e instanceof FileNotFoundError)
  }

  const events = []
  const watcher = await sbx.files.watchDir(tmp, (e) => events.push(e), { recursive: true })
  await sbx.files.write(`${tmp}/w.txt`, 'x')
  for (let i = 0; i < 50 && !events.some((e) => e.name === 'w.txt'); i++) await new Promise((r) => setTimeout(r, 50))
  await watcher.stop()
  check('watchDir', events.some((e) => e.name === 'w.txt' && e.type === 'create'))

  let out = ''
  const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { out += Buffer.from(d).toString() } })
  await sbx.pty.resize(term.pid, { cols: 90, rows: 30 })
  await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit\n'))
  await term.wait().catch(() => {})
  check('pty', out.includes('30 90'))

  check('isRunning', await sbx.isRunning())
  rmSync(tmp, { recursive: true, force: true })
  console.log(`OK: official JS SDK works against envd ${version}`)
} finally {
  envd.kill()
  api.close()
  rmSync(etc, { recursive: true, force: true })
}
