// The package itself, without a server: entry points, error classes, typings.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import * as esm from 'e2b'
import { repoRoot } from './sandboxd.mjs'

const require = createRequire(import.meta.url)

test('require and import give the same objects; ESM names cover the CommonJS exports', () => {
  const cjs = require('e2b')
  assert.equal(esm.Sandbox, cjs.Sandbox)
  // `import Sandbox from 'e2b'`, as with E2B's package.
  assert.equal(esm.default, cjs.Sandbox)
  assert.equal(cjs.default, cjs.Sandbox)
  for (const name of Object.keys(cjs)) assert.ok(name in esm, `index.mjs does not export ${name}`)
  for (const name of ['Sandbox', 'CommandExitError', 'SandboxNotFoundError', 'FileType']) assert.ok(esm[name], name)
})

test("error classes follow E2B's hierarchy", () => {
  const { SandboxError, TimeoutError, InvalidArgumentError, NotEnoughSpaceError, NotFoundError } = esm
  const { FileNotFoundError, SandboxNotFoundError, TemplateError, RateLimitError, AuthenticationError, CommandExitError } = esm
  for (const C of [TimeoutError, InvalidArgumentError, NotEnoughSpaceError, NotFoundError, TemplateError, RateLimitError, CommandExitError]) {
    assert.ok(new C('x') instanceof SandboxError, C.name)
  }
  assert.ok(new FileNotFoundError('x') instanceof NotFoundError)
  assert.ok(new SandboxNotFoundError('x') instanceof NotFoundError)
  assert.ok(!(new AuthenticationError('x') instanceof SandboxError))
  const e = new CommandExitError({ exitCode: 2, stdout: 'o', stderr: 'e', error: 'exit status 2' })
  assert.deepEqual([e.name, e.exitCode, e.stdout, e.stderr, e.error, e.message], ['CommandExitError', 2, 'o', 'e', 'exit status 2', 'exit status 2'])
})

test('paginators are created synchronously and fetch nothing until nextItems', () => {
  const p = esm.Sandbox.listSnapshots({ sandboxId: 'anything', apiUrl: 'http://127.0.0.1:1', apiKey: 'e2b_00' })
  assert.equal(p.hasNext, true)
  assert.equal(p.nextToken, null)
  assert.equal(esm.Sandbox.list({ apiUrl: 'http://127.0.0.1:1', apiKey: 'e2b_00' }).hasNext, true)
})

test('an unreachable API rejects with a SandboxError whose stack points at the caller', async () => {
  const opts = { apiUrl: 'http://127.0.0.1:1', sandboxUrl: 'http://127.0.0.1:1', apiKey: 'e2b_00', requestTimeoutMs: 5_000 }
  await assert.rejects(esm.Sandbox.getInfo('i0000000000000000000x', opts), (e) => {
    assert.ok(e instanceof esm.SandboxError, `${e.name}: ${e.message}`)
    assert.ok(!e.message.startsWith('[e2b:'), e.message)
    assert.match(e.stack, /package\.test\.mjs/)
    return true
  })
})

test('index.d.ts type-checks a program using the API (needs the dev dependencies)', (t) => {
  let tsc
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [repoRoot] })
  } catch {
    t.skip('typescript is not installed (run npm install at the repo root)')
    return
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-types-'))
  try {
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}')
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'e2b'))
    fs.writeFileSync(
      path.join(dir, 'ok.ts'),
      `import { Sandbox, CommandExitError, FileType, type SnapshotInfo } from 'e2b'
const sandbox = await Sandbox.create()
const s2 = await Sandbox.create('base', { timeoutMs: 60_000, metadata: { a: 'b' } })
const snapshot: SnapshotInfo = await sandbox.createSnapshot()
const byId: SnapshotInfo = await Sandbox.createSnapshot(s2.sandboxId, { name: 'n' })
const paginator = Sandbox.listSnapshots({ sandboxId: sandbox.sandboxId })
while (paginator.hasNext) { const items: SnapshotInfo[] = await paginator.nextItems(); void items }
const deleted: boolean = await Sandbox.deleteSnapshot(snapshot.snapshotId)
const out: string = (await sandbox.commands.run('echo hi')).stdout
const pid: number = (await sandbox.commands.run('sleep 1', { background: true })).pid
const text: string = await sandbox.files.read('/x')
const bytes: Uint8Array = await sandbox.files.read('/x', { format: 'bytes' })
const isDir: boolean = (await sandbox.files.list('/'))[0].type === FileType.DIR
try { await sandbox.commands.run('false') } catch (e) { if (e instanceof CommandExitError) { const c: number = e.exitCode; void c } }
const started: Date = (await sandbox.getInfo()).startedAt
void [byId, deleted, out, pid, text, bytes, isDir, started]
`,
    )
    fs.writeFileSync(path.join(dir, 'bad.ts'), `import { Sandbox } from 'e2b'\nconst n: number = await (await Sandbox.create()).files.read('/x')\nvoid n\n`)
    const args = ['--noEmit', '--strict', '--isolatedModules', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']
    execFileSync(process.execPath, [tsc, ...args, 'ok.ts'], { cwd: dir, stdio: 'pipe' })
    assert.throws(() => execFileSync(process.execPath, [tsc, ...args, 'bad.ts'], { cwd: dir, stdio: 'pipe' }))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
