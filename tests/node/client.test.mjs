// `E2B`, the client factory, against a real sandboxd: its classes use the client's options instead
// of the environment, per-call options win, and clients stay isolated.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startSandboxd } from './sandboxd.mjs'

const e2b = await import('e2b')
const { E2B, Sandbox, Secret, Template, AuthenticationError, InvalidArgumentError } = e2b
const BAD_KEY = 'e2b_' + '0'.repeat(40)
let server

before(async () => {
  server = await startSandboxd()
})
after(async () => {
  await server?.stop()
})

test('bound options are the defaults, per-call options win, clients are isolated', async () => {
  const good = new E2B({ apiUrl: server.url, sandboxUrl: server.url, apiKey: server.apiKey })
  const bad = new E2B({ apiUrl: server.url, apiKey: BAD_KEY })
  const name = `client-${Math.random().toString(16).slice(2, 10)}`
  for (const call of [
    () => bad.Secret.create(name, 'v'),
    () => bad.Sandbox.list().nextItems(),
    () => bad.Sandbox.create(),
    () => bad.Sandbox.create('base', { timeoutMs: 10_000 }),
    () => bad.Template.exists('base'),
  ]) {
    await assert.rejects(call(), AuthenticationError)
  }
  const info = await bad.Secret.create(name, 'v', { apiKey: server.apiKey })
  await assert.rejects(bad.Secret.getInfo(name, { apiKey: undefined }), AuthenticationError)
  assert.deepEqual(await good.Secret.getInfo(name), info)
  assert.equal(await good.Template.exists('base'), true)
  assert.deepEqual(await Secret.getInfo(name), info)
  assert.ok(new good.Template() instanceof e2b.TemplateBase)
  assert.equal(Sandbox.boundOpts, undefined)
  assert.notEqual(good.Sandbox, bad.Sandbox)
  await good.Secret.destroy(name)
})

test('a sandbox through a client', async () => {
  const client = new E2B({ apiUrl: server.url, sandboxUrl: server.url, apiKey: server.apiKey })
  const sbx = await client.Sandbox.create({ timeoutMs: 60_000 })
  try {
    assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
    assert.equal((await client.Sandbox.getInfo(sbx.sandboxId)).sandboxId, sbx.sandboxId)
    const again = await client.Sandbox.connect(sbx.sandboxId)
    assert.equal((await again.commands.run('echo again')).stdout, 'again\n')
  } finally {
    assert.equal(await client.Sandbox.kill(sbx.sandboxId), true)
  }
})

test('unsupported options are refused', () => {
  assert.throws(() => new E2B({ proxy: 'http://proxy:3128' }), InvalidArgumentError)
  assert.equal(typeof new E2B().Volume.create, 'function')
  assert.equal(typeof new E2B().Template.build, 'function')
  assert.equal(new E2B().Template.toDockerfile, Template.toDockerfile)
})

test('a subclass of Sandbox gets its own instances and default template, as E2B', async () => {
  class Mine extends Sandbox {
    static defaultTemplate = 'base'
    hello() {
      return `hello from ${this.sandboxId}`
    }
  }
  const sbx = await Mine.create({ timeoutMs: 60_000 })
  try {
    assert.ok(sbx instanceof Mine && sbx instanceof Sandbox)
    assert.equal(sbx.hello(), `hello from ${sbx.sandboxId}`)
    assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
    assert.ok((await Mine.connect(sbx.sandboxId)) instanceof Mine)
  } finally {
    await sbx.kill()
  }
  class Missing extends Sandbox {
    static defaultTemplate = 'no-such-template'
  }
  await assert.rejects(Missing.create(), /404: template 'no-such-template' not found/)
  // An explicit template wins over the default.
  const other = await Missing.create('base', { timeoutMs: 60_000 })
  assert.ok(other instanceof Missing)
  await other.kill()
})
