// Our Node SDK's `Secret` against a real sandboxd: values go in and never come out, versions
// count updates, the paginator pages (and takes per-call options), errors are E2B's classes.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startSandboxd } from './sandboxd.mjs'

const e2b = await import('e2b')
const { Secret, SecretPaginator, SecretError, SecretNotFoundError, AuthenticationError, InvalidArgumentError } = e2b
let server

before(async () => {
  server = await startSandboxd()
})
after(async () => {
  await server?.stop()
})

const unique = (p) => `${p}-${Math.random().toString(16).slice(2, 10)}`

test('create, get, update, destroy', async () => {
  const name = unique('Node-Key')
  const info = await Secret.create(name, 's3cr3t', { metadata: { owner: 'node' } })
  assert.equal(info.name, name.toLowerCase())
  assert.match(info.secretId, /^sec_[a-z0-9]{20}$/)
  assert.equal(info.version, 1)
  assert.deepEqual(info.metadata, { owner: 'node' })
  assert.ok(info.createdAt instanceof Date && info.updatedAt instanceof Date)
  assert.deepEqual(await Secret.getInfo(name), info)
  const updated = await Secret.update(info.secretId, 'again', { metadata: {} })
  assert.equal(updated.version, 2)
  assert.deepEqual(updated.metadata, {})
  assert.equal(JSON.stringify(await Secret.getInfo(name)).includes('again'), false)
  assert.equal(await Secret.exists(name), true)
  assert.equal(await Secret.destroy(name), true)
  assert.equal(await Secret.destroy(name), false)
  assert.equal(await Secret.exists(name), false)
  await assert.rejects(Secret.getInfo(name), (e) => e instanceof SecretNotFoundError && e.message === `Secret ${name} not found`)
})

test('errors are the SDK classes; fill and iamToken are local', async () => {
  const name = unique('dup')
  await Secret.create(name, 'v')
  await assert.rejects(Secret.create(name.toUpperCase(), 'v'), (e) => e instanceof SecretError && /^409: a secret named/.test(e.message))
  await assert.rejects(Secret.create('sec_x', 'v'), (e) => e instanceof SecretError && /^400: invalid secret name/.test(e.message))
  await assert.rejects(Secret.getInfo(name, { apiKey: 'e2b_' + '0'.repeat(40), apiUrl: server.url }), AuthenticationError)
  assert.equal(Secret.fill('openai-api-key'), '${e2b.secrets.openai-api-key}')
  assert.throws(() => Secret.fill('a{b'), InvalidArgumentError)
  assert.deepEqual(Secret.iamToken({ audience: 'sts.amazonaws.com', tokenType: 'JWT-SVID' }), {
    audience: 'sts.amazonaws.com',
    tokenType: 'JWT-SVID',
  })
  assert.throws(() => Secret.list({ signal: AbortSignal.timeout(1000) }), InvalidArgumentError)
  await Secret.destroy(name)
})

test('the paginator pages, newest first', async () => {
  const made = []
  for (let i = 0; i < 3; i++) made.push((await Secret.create(unique('page'), 'v')).secretId)
  const p = Secret.list({ limit: 2 })
  assert.ok(p instanceof SecretPaginator && p.hasNext)
  const seen = []
  while (p.hasNext) seen.push(...(await p.nextItems()).map((s) => s.secretId))
  assert.deepEqual(seen.filter((id) => made.includes(id)), [...made].reverse())
  await assert.rejects(p.nextItems(), /No more items to fetch/)
  const q = Secret.list({ limit: 1 })
  await assert.rejects(q.nextItems({ apiKey: 'e2b_' + '0'.repeat(40), apiUrl: server.url }), AuthenticationError)
  assert.equal((await q.nextItems()).length, 1)
  for (const id of made) await Secret.destroy(id)
})
