// The E2B surface added for issue 12 through the `e2b` package against a real sandboxd (one
// microVM): default export, options E2B has that we refuse (never ignore), handle stdin and
// accumulated output, per-call request timeouts, signed upload/download URLs over plain HTTP,
// betaPause/getFullInfo aliases, pty, watchDir.
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

describe('surface', () => {
  test('default export is Sandbox', async () => {
    const { default: Sandbox } = await import('e2b')
    assert.equal(Sandbox, e2b.Sandbox)
  })

  test('unimplemented options are refused before any request', async () => {
    const { InvalidArgumentError } = e2b
    for (const opts of [{ retries: 2 }, { logger: console }]) {
      await assert.rejects(e2b.Sandbox.create(opts), (e) => {
        assert.ok(e instanceof InvalidArgumentError, `${e.name}: ${e.message}`)
        assert.match(e.message, new RegExp(`'${Object.keys(opts)[0]}'`))
        return true
      })
    }
    await assert.rejects(e2b.Sandbox.create({ network: { egressProxy: { address: 'p:1080' } } }), e2b.InvalidArgumentError)
    // A transform naming a token `iam` does not register fails here, before any request.
    await assert.rejects(
      e2b.Sandbox.create({ network: { rules: { 'a.example.com': [{ transform: (ctx) => ({ headers: { A: ctx.iam.tokens.nope } }) }] } } }),
      /iam token 'nope', which is not registered/,
    )
    await assert.rejects(e2b.Sandbox.create({ lifecycle: { onTimeout: 'stop' } }), /onTimeout|on_timeout/)
    await assert.rejects(e2b.Sandbox.connect(sbx.sandboxId, { onResume: 'warm' }), e2b.InvalidArgumentError)
    await assert.rejects(sbx.commands.list({ signal: AbortSignal.timeout(1000) }), e2b.InvalidArgumentError)
  })

  test('command handle: stdin and accumulated output', async () => {
    const h = await sbx.commands.run('cat; echo done >&2', { background: true, stdin: true, requestTimeoutMs: 30_000 })
    await h.sendStdin('ping\n', { requestTimeoutMs: 10_000 })
    await h.closeStdin()
    const r = await h.wait()
    assert.equal(r.stdout, 'ping\n')
    assert.equal(h.stdout, 'ping\n')
    assert.equal(h.stderr, 'done\n')
    assert.equal(h.exitCode, 0)
    const listed = await sbx.commands.list({ requestTimeoutMs: 10_000 })
    assert.ok(Array.isArray(listed))
  })

  test('files with request timeouts; signed URLs over plain HTTP', async () => {
    await sbx.files.write('/tmp/s.txt', 'text', { requestTimeoutMs: 20_000 })
    assert.equal(await sbx.files.read('/tmp/s.txt', { requestTimeoutMs: 20_000 }), 'text')
    const got = await fetch(await sbx.downloadUrl('/tmp/s.txt'))
    assert.equal(got.status, 200)
    assert.equal(await got.text(), 'text')
    const form = new FormData()
    form.append('file', new Blob(['uploaded']), 'up.txt')
    const put = await fetch(await sbx.uploadUrl('/tmp/up.txt', { useSignatureExpiration: 120 }), { method: 'POST', body: form })
    assert.ok(put.ok, `${put.status}`)
    assert.equal(await sbx.files.read('/tmp/up.txt'), 'uploaded')
  })

  test('pty: create, resize, input, output bytes', async () => {
    const chunks = []
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => chunks.push(Buffer.from(d)) })
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit\n'))
    await term.wait().catch(() => {})
    assert.match(Buffer.concat(chunks).toString(), /30 100/)
  })

  test('watchDir pushes events and stops', async () => {
    await sbx.files.makeDir('/tmp/nw')
    const events = []
    const w = await sbx.files.watchDir('/tmp/nw', (e) => events.push(e))
    await sbx.files.write('/tmp/nw/a.txt', 'a')
    const deadline = Date.now() + 20_000
    while (!events.some((e) => e.name === 'a.txt')) {
      assert.ok(Date.now() < deadline, JSON.stringify(events))
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.ok(events.some((e) => e.name === 'a.txt' && e.type === e2b.FilesystemEventType.CREATE), JSON.stringify(events))
    await w.stop()
  })

  test('write(files) overload, refused transfer options, metrics', async () => {
    const infos = await sbx.files.write([
      { path: '/tmp/m/1.txt', data: 'one' },
      { path: '/tmp/m/2.txt', data: new TextEncoder().encode('two') },
    ])
    assert.deepEqual(infos.map((i) => i.path), ['/tmp/m/1.txt', '/tmp/m/2.txt'])
    assert.equal(await sbx.files.read('/tmp/m/2.txt'), 'two')
    await assert.rejects(sbx.files.write('/tmp/g.txt', 'x', { gzip: true }), e2b.InvalidArgumentError)
    assert.equal(await sbx.files.exists('/tmp/g.txt'), false)
    const metrics = await sbx.getMetrics()
    assert.ok(Array.isArray(metrics))
    await assert.rejects(e2b.Sandbox.getMetrics('inotexisting00000000'), e2b.SandboxNotFoundError)
  })

  test('getFullInfo is getInfo', async () => {
    const a = await e2b.Sandbox.getFullInfo(sbx.sandboxId)
    assert.equal(a.sandboxId, sbx.sandboxId)
    assert.equal(typeof e2b.Sandbox.betaPause, 'function')
    assert.equal(typeof sbx.betaPause, 'function')
  })
})
