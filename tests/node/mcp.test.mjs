// Our Node SDK's MCP gateway option against a real sandboxd: `Sandbox.create({ template, mcp })`
// starts the gateway (a stand-in, tests/fixtures/mcp-gateway, in a template built here from
// `base`), `getMcpToken()` / `getMcpUrl()` as E2B's SDK; a gateway that fails kills the sandbox.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'

import { repoRoot, startSandboxd } from './sandboxd.mjs'

const e2b = await import('e2b')
let server
let name

before(async () => {
  server = await startSandboxd()
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-node-mcp-'))
  fs.copyFileSync(path.join(repoRoot, 'tests/fixtures/mcp-gateway'), path.join(ctx, 'mcp-gateway'))
  name = `node-mcp-${Math.random().toString(16).slice(2, 10)}`
  const t = e2b.Template({ fileContextPath: ctx })
    .fromTemplate('base')
    .copy('mcp-gateway', '/usr/local/bin/mcp-gateway', { mode: 0o755, user: 'root' })
  await e2b.Template.build(t, name)
})
after(async () => {
  await server?.stop()
})

test('create with mcp starts the gateway; token and URL as E2B', async () => {
  const sbx = await e2b.Sandbox.create({ template: name, mcp: { exa: { apiKey: 'k-node' } }, timeoutMs: 120_000 })
  try {
    const token = await sbx.getMcpToken()
    assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.equal(sbx.mcpPort, 50005)
    assert.equal(sbx.getMcpUrl(), `https://${sbx.getHost(50005)}/mcp`)
    assert.deepEqual(JSON.parse(await sbx.files.read('/etc/mcp-gateway/config.json', { user: 'root' })), { exa: { apiKey: 'k-node' } })
    const again = await e2b.Sandbox.connect(sbx.sandboxId)
    assert.equal(await again.getMcpToken(), token)
  } finally {
    await sbx.kill()
  }
})

test('a gateway that fails kills the sandbox', async () => {
  const before = (await e2b.Sandbox.list().nextItems()).map((s) => s.sandboxId).sort()
  await assert.rejects(e2b.Sandbox.create({ template: name, mcp: { broken: {} } }), (e) => {
    assert.ok(e instanceof e2b.SandboxError, `${e.name}: ${e.message}`)
    assert.match(e.message, /Failed to start MCP gateway: .*'broken' failed to start/)
    return true
  })
  const after_ = (await e2b.Sandbox.list().nextItems()).map((s) => s.sandboxId).sort()
  assert.deepEqual(after_, before)
})
