// E2B's code interpreter for JS (npm `@e2b/code-interpreter`) on **our** `e2b` package against a
// real sandboxd: its `Sandbox` subclasses ours and runs code in the `code-interpreter-v1`
// template (templates/code-interpreter, built here with our Template builder). scripts/test.sh
// installs the package into $CARGO_TARGET_DIR/ci-js with its `e2b` dependency linked to this repo.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { after, before, test } from 'node:test'

import { repoRoot, startSandboxd } from './sandboxd.mjs'

const e2b = await import('e2b')
const target = process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target')
const ciDir = path.join(target, 'ci-js')
let ci
let server

before(async () => {
  if (!fs.existsSync(path.join(ciDir, 'node_modules/@e2b/code-interpreter/package.json'))) {
    if (process.env.CI) throw new Error(`@e2b/code-interpreter is not installed in ${ciDir} (scripts/test.sh installs it)`)
    return
  }
  ci = createRequire(path.join(ciDir, 'package.json'))('@e2b/code-interpreter')
  server = await startSandboxd()
  const t = e2b
    .Template({ fileContextPath: path.join(repoRoot, 'templates/code-interpreter') })
    .fromTemplate('base')
    .copy(['server.py', 'kernel.py'], '/opt/code-interpreter/', { user: 'root' })
    .setStartCmd('python3 /opt/code-interpreter/server.py', e2b.waitForPort(49999))
  await e2b.Template.build(t, 'code-interpreter-v1')
})
after(async () => {
  await server?.stop()
})

test('run code on our SDK', async (t) => {
  if (!ci) return t.skip('@e2b/code-interpreter is not installed')
  // The package resolved `e2b` to this repository's package.
  assert.equal(Object.getPrototypeOf(ci.Sandbox), e2b.Sandbox)
  const sbx = await ci.Sandbox.create({ timeoutMs: 120_000 })
  try {
    assert.ok(sbx instanceof ci.Sandbox && sbx instanceof e2b.Sandbox)
    const out = []
    const ex = await sbx.runCode("print('hi')\n6 * 7", { onStdout: (m) => out.push(m.line) })
    assert.equal(ex.text, '42')
    assert.deepEqual(ex.logs.stdout, ['hi\n'])
    assert.deepEqual(out, ['hi\n'])
    assert.equal((await sbx.runCode('1/0')).error.name, 'ZeroDivisionError')
    const ctx = await sbx.createCodeContext({ cwd: '/tmp' })
    assert.equal((await sbx.runCode('import os; os.getcwd()', { context: ctx })).text, "'/tmp'")
    assert.ok((await sbx.listCodeContexts()).some((c) => c.id === ctx.id))
    await sbx.removeCodeContext(ctx)
    // An execution that outlives its timeout is interrupted; the context answers again after.
    await assert.rejects(sbx.runCode('import time\nwhile True: time.sleep(0.1)', { timeoutMs: 3000 }))
    assert.equal((await sbx.runCode('2 + 2', { timeoutMs: 30_000 })).text, '4')
    assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
  } finally {
    await sbx.kill()
  }
})
