// Our Node SDK's `Volume` against a real sandboxd: the REST calls, the content API (files,
// directories, metadata; every `readFile` format), E2B's error classes and the client factory.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startSandboxd } from './sandboxd.mjs'

const e2b = await import('e2b')
const { E2B, Volume, VolumeFileType, VolumeError, VolumeNotFoundError, VolumePathNotFoundError, AuthenticationError, InvalidArgumentError } = e2b
let server

before(async () => {
  server = await startSandboxd()
})
after(async () => {
  await server?.stop()
})

const unique = (p) => `${p}-${Math.random().toString(16).slice(2, 10)}`

test('volumes: create, connect, list, getInfo, destroy', async () => {
  const name = unique('node-vol')
  const vol = await Volume.create(name)
  assert.equal(vol.name, name)
  assert.match(vol.token, /^[0-9a-f]{64}$/)
  const info = await Volume.getInfo(vol.volumeId)
  assert.deepEqual(info, { volumeId: vol.volumeId, name, token: vol.token })
  assert.ok((await Volume.list()).some((v) => v.volumeId === vol.volumeId && v.name === name))
  assert.equal((await Volume.connect(vol.volumeId)).token, vol.token)
  await assert.rejects(Volume.create(name), (e) => e instanceof VolumeError && /^409: a volume named/.test(e.message))
  assert.equal(await Volume.destroy(vol.volumeId), true)
  assert.equal(await Volume.destroy(vol.volumeId), false)
  await assert.rejects(Volume.getInfo(vol.volumeId), VolumeNotFoundError)
})

test('files and directories through the content API', async () => {
  const vol = await Volume.create(unique('files'))
  const dir = await vol.makeDir('/a/b', { force: true, mode: 0o750 })
  assert.equal(dir.type, VolumeFileType.DIRECTORY)
  assert.equal(dir.mode, 0o750)
  await assert.rejects(vol.makeDir('/x/y'), VolumePathNotFoundError)
  const st = await vol.writeFile('/a/b/f.txt', 'hello', { mode: 0o600 })
  assert.deepEqual([st.type, st.size, st.mode, st.path], [VolumeFileType.FILE, 5, 0o600, '/a/b/f.txt'])
  assert.ok(st.mtime instanceof Date)
  assert.equal(await vol.readFile('/a/b/f.txt'), 'hello')
  assert.deepEqual([...(await vol.readFile('/a/b/f.txt', { format: 'bytes' }))], [...Buffer.from('hello')])
  assert.equal(await (await vol.readFile('/a/b/f.txt', { format: 'blob' })).text(), 'hello')
  assert.equal(await new Response(await vol.readFile('/a/b/f.txt', { format: 'stream' })).text(), 'hello')
  await vol.writeFile('/blob.bin', new Blob([new Uint8Array([1, 2, 3])]))
  await vol.writeFile('/buf.bin', new Uint8Array([4, 5]).buffer)
  await vol.writeFile('/stream.bin', new Blob(['streamed']).stream())
  assert.equal(await vol.readFile('/stream.bin'), 'streamed')
  assert.deepEqual((await vol.list('/', { depth: 3 })).map((e) => e.path), ['/a', '/a/b', '/a/b/f.txt', '/blob.bin', '/buf.bin', '/stream.bin'])
  assert.equal((await vol.getInfo('/buf.bin')).size, 2)
  assert.equal(await vol.exists('/nope'), false)
  assert.equal((await vol.updateMetadata('/a/b/f.txt', { mode: 0o644 })).mode, 0o644)
  await assert.rejects(vol.readFile('/../etc/passwd'), (e) => e instanceof VolumeError && /'\.\.'/.test(e.message))
  await assert.rejects(vol.readFile('/a/b/f.txt', { streamIdleTimeoutMs: 10 }), InvalidArgumentError)
  await vol.remove('/a')
  await assert.rejects(vol.getInfo('/a/b/f.txt'), (e) => e instanceof VolumePathNotFoundError && e.message === 'Path /a/b/f.txt not found')
  // Another volume's token opens nothing here.
  const other = await Volume.create(unique('other'))
  await assert.rejects(vol.readFile('/buf.bin', { token: other.token }), AuthenticationError)
  await Volume.destroy(vol.volumeId)
  await Volume.destroy(other.volumeId)
})

test('a client binds its options to Volume', async () => {
  const bad = new E2B({ apiUrl: server.url, apiKey: 'e2b_' + '0'.repeat(40) })
  await assert.rejects(bad.Volume.list(), AuthenticationError)
  const good = new E2B({ apiUrl: server.url, apiKey: server.apiKey })
  const vol = await good.Volume.create(unique('bound'))
  // Mounted by sandboxd: what the sandbox writes there is in the volume.
  const sbx = await good.Sandbox.create({ volumeMounts: { '/mnt/data': vol } })
  await sbx.files.write('/mnt/data/hello.txt', 'Hello, world!')
  assert.equal(await vol.readFile('/hello.txt'), 'Hello, world!')
  assert.deepEqual((await sbx.getInfo()).volumeMounts, [{ name: vol.name, path: '/mnt/data' }])
  const byName = await good.Sandbox.create('base', { volumeMounts: { '/data': vol.name } })
  assert.equal(await byName.files.read('/data/hello.txt'), 'Hello, world!')
  await assert.rejects(good.Sandbox.create({ volumeMounts: { '/mnt/x': 'no-such-volume' } }), /volume "no-such-volume" not found/)
  await sbx.kill()
  await byName.kill()
  assert.equal(await good.Volume.destroy(vol.volumeId), true)
})
