// Starts a real sandboxd for the Node tests and points the SDK at it through the environment.
//
// SANDBOXD_BIN (default <repo>/target/debug/sandboxd) is started with
// `serve --listen 127.0.0.1:<free port> --data-dir <tmp> --templates-dir <dir>`, where <dir> is
// $SANDBOXD_TEMPLATES_DIR, else sandboxd's own default shared one
// ($XDG_DATA_HOME/sandboxd/templates or ~/.local/share/sandboxd/templates, where
// `sandboxd template build base` puts the base template). Then E2B_API_URL / E2B_SANDBOX_URL point at it and
// E2B_API_KEY comes from <data dir>/api_key. Anything missing or not answering makes the caller's
// `before` hook throw, so the tests fail instead of passing without a server.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Start sandboxd and set the E2B_* environment of this process to it.
 * Returns { url, apiKey, dataDir, env, stop() }; `env` is the environment for child processes.
 */
export async function startSandboxd({ readyTimeoutMs = 60_000 } = {}) {
  const bin = process.env.SANDBOXD_BIN || path.join(repoRoot, 'target/debug/sandboxd')
  if (!fs.existsSync(bin)) {
    throw new Error(`sandboxd binary not found at ${bin} (build it with \`cargo build -p sandboxd\` or set SANDBOXD_BIN)`)
  }
  const port = await freePort()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-node-test-'))
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir]
  const dataHome = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local/share')
  const templatesDir = process.env.SANDBOXD_TEMPLATES_DIR || path.join(dataHome, 'sandboxd/templates')
  args.push('--templates-dir', templatesDir)

  const logPath = path.join(dataDir, 'sandboxd.log')
  const log = fs.openSync(logPath, 'a')
  const child = spawn(bin, args, { stdio: ['ignore', log, log], detached: false })
  let exited = null
  child.on('exit', (code, signal) => {
    exited = { code, signal }
  })

  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (exited) {
      throw new Error(`sandboxd exited early (${JSON.stringify(exited)}); log:\n${fs.readFileSync(logPath, 'utf8')}`)
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.status < 500 && fs.existsSync(path.join(dataDir, 'api_key'))) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`sandboxd did not become ready at ${url} within ${readyTimeoutMs} ms; log:\n${fs.readFileSync(logPath, 'utf8')}`)
    }
    await sleep(200)
  }

  const apiKey = fs.readFileSync(path.join(dataDir, 'api_key'), 'utf8').trim()
  const env = { E2B_API_URL: url, E2B_SANDBOX_URL: url, E2B_API_KEY: apiKey }
  Object.assign(process.env, env)

  async function stop() {
    // Sandboxes outlive sandboxd by design (a restart loses nothing), so kill them first.
    try {
      const { Sandbox } = await import('e2b')
      const p = Sandbox.list({ apiUrl: url, sandboxUrl: url, apiKey, query: { state: ['running', 'paused'] } })
      while (p.hasNext) {
        for (const s of await p.nextItems()) await Sandbox.kill(s.sandboxId, { apiUrl: url, sandboxUrl: url, apiKey })
      }
    } catch (e) {
      console.error(`tests/node: could not kill the sandboxes of ${url}: ${e}`)
    }
    if (!exited) {
      child.kill('SIGTERM')
      for (let i = 0; i < 50 && !exited; i++) await sleep(100)
      if (!exited) child.kill('SIGKILL')
    }
    fs.closeSync(log)
    if (process.env.E2B_TEST_KEEP_DATA) return
    // As root on a filesystem without reflinks, sandboxd loop-mounts an XFS image on
    // <data>/store and leaves it mounted when it exits.
    // Any VM still running from this data dir (its path is on the QEMU command line) goes too.
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir)) process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone, or not ours to read
      }
    }
    await sleep(200)
    const store = path.join(dataDir, 'store')
    if (spawnSync('mountpoint', ['-q', store]).status === 0) spawnSync('umount', [store])
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { url, apiKey, dataDir, logPath, env: { ...process.env, ...env }, stop }
}

/** Run `node <args>` with `env`; resolves to { code, stdout, stderr } (rejects on timeout). */
export function runNode(args, { env, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
