// `sandbox.commands` and `sandbox.files` through the `e2b` package against a real sandboxd.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { startSandboxd } from './sandboxd.mjs'

let server
let e2b
let sbx

before(async () => {
  server = await startSandboxd()
  e2b = await import('e2b')
  sbx = await e2b.Sandbox.create()
})

after(async () => {
  await sbx?.kill().catch(() => {})
  await server?.stop()
})

describe('commands', () => {
  test("run('echo hi')", async () => {
    const r = await sbx.commands.run('echo hi')
    assert.equal(r.stdout, 'hi\n')
    assert.equal(r.stderr, '')
    assert.equal(r.exitCode, 0)
  })

  test('non-zero exit rejects with CommandExitError carrying the result', async () => {
    const { CommandExitError, SandboxError } = e2b
    await assert.rejects(sbx.commands.run('echo out; echo err >&2; exit 3'), (e) => {
      assert.ok(e instanceof CommandExitError, `${e.name}: ${e.message}`)
      assert.ok(e instanceof SandboxError)
      assert.equal(e.exitCode, 3)
      assert.equal(e.stdout, 'out\n')
      assert.equal(e.stderr, 'err\n')
      return true
    })
  })

  test('envs, cwd and output callbacks', async () => {
    const chunks = []
    const r = await sbx.commands.run('echo "$GREETING" && pwd', {
      envs: { GREETING: 'hello' },
      cwd: '/tmp',
      onStdout: (d) => chunks.push(d),
    })
    assert.equal(r.stdout, 'hello\n/tmp\n')
    assert.equal(chunks.join(''), r.stdout)
  })

  test('background handle: pid, list, kill', async () => {
    const h = await sbx.commands.run('sleep 60', { background: true })
    assert.equal(typeof h.pid, 'number')
    const listed = await sbx.commands.list()
    assert.ok(listed.some((p) => p.pid === h.pid), JSON.stringify(listed))
    assert.equal(await h.kill(), true)
    await assert.rejects(h.wait())
    assert.equal(await sbx.commands.kill(h.pid), false)
  })

  test('background handle: stdin and wait', async () => {
    const h = await sbx.commands.run('cat', { background: true, stdin: true })
    await sbx.commands.sendStdin(h.pid, 'through stdin\n')
    await h.closeStdin()
    const r = await h.wait()
    assert.equal(r.stdout, 'through stdin\n')
    assert.equal(r.exitCode, 0)
  })
})

describe('files', () => {
  test('write and read text and bytes', async () => {
    const w = await sbx.files.write('/tmp/node-files/a.txt', 'héllo')
    assert.equal(w.path, '/tmp/node-files/a.txt')
    assert.equal(await sbx.files.read('/tmp/node-files/a.txt'), 'héllo')
    const bytes = new Uint8Array([0, 1, 2, 255])
    await sbx.files.write('/tmp/node-files/b.bin', bytes)
    const back = await sbx.files.read('/tmp/node-files/b.bin', { format: 'bytes' })
    assert.ok(back instanceof Uint8Array)
    assert.deepEqual([...back], [0, 1, 2, 255])
    // E2B's other formats: a Blob and a ReadableStream of the same bytes; others are refused.
    const blob = await sbx.files.read('/tmp/node-files/b.bin', { format: 'blob' })
    assert.ok(blob instanceof Blob)
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [0, 1, 2, 255])
    const stream = await sbx.files.read('/tmp/node-files/b.bin', { format: 'stream' })
    assert.deepEqual([...new Uint8Array(await new Response(stream).arrayBuffer())], [0, 1, 2, 255])
    await assert.rejects(sbx.files.read('/tmp/node-files/b.bin', { format: 'xml' }), e2b.InvalidArgumentError)
  })

  test('exists, getInfo, list, makeDir, rename, remove', async () => {
    const { FileNotFoundError, NotFoundError } = e2b
    const f = sbx.files
    await f.write('/tmp/node-fs/x.txt', 'x')
    assert.equal(await f.exists('/tmp/node-fs/x.txt'), true)
    assert.equal(await f.exists('/tmp/node-fs/nope'), false)
    const info = await f.getInfo('/tmp/node-fs/x.txt')
    assert.equal(info.type, 'file')
    assert.equal(info.size, 1)
    assert.equal(await f.makeDir('/tmp/node-fs/sub'), true)
    assert.equal(await f.makeDir('/tmp/node-fs/sub'), false)
    const names = (await f.list('/tmp/node-fs')).map((e) => `${e.name}:${e.type}`).sort()
    assert.deepEqual(names, ['sub:dir', 'x.txt:file'])
    const moved = await f.rename('/tmp/node-fs/x.txt', '/tmp/node-fs/sub/y.txt')
    assert.equal(moved.path, '/tmp/node-fs/sub/y.txt')
    await f.remove('/tmp/node-fs/sub/y.txt')
    assert.equal(await f.exists('/tmp/node-fs/sub/y.txt'), false)
    await assert.rejects(f.read('/tmp/node-fs/missing.txt'), (e) => {
      assert.ok(e instanceof FileNotFoundError, `${e.name}: ${e.message}`)
      assert.ok(e instanceof NotFoundError)
      return true
    })
  })
})
