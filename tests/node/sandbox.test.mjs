// Sandbox lifecycle, snapshots, paginators and errors through the `e2b` package against a real
// sandboxd.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { startSandboxd } from './sandboxd.mjs'

let server
let e2b
let sbx

before(async () => {
  server = await startSandboxd()
  e2b = await import('e2b')
  sbx = await e2b.Sandbox.create({ metadata: { suite: 'node-sandbox' }, timeoutMs: 600_000 })
})

after(async () => {
  await sbx?.kill().catch(() => {})
  await server?.stop()
})

async function all(paginator) {
  const items = []
  while (paginator.hasNext) items.push(...(await paginator.nextItems()))
  return items
}

describe('lifecycle', () => {
  test('getInfo, static and instance', async () => {
    const { Sandbox } = e2b
    assert.match(sbx.sandboxId, /^[a-z0-9]+$/)
    const info = await sbx.getInfo()
    assert.equal(info.sandboxId, sbx.sandboxId)
    assert.equal(info.state, 'running')
    assert.equal(info.metadata.suite, 'node-sandbox')
    assert.ok(info.startedAt instanceof Date && info.endAt instanceof Date)
    assert.ok(info.endAt > info.startedAt)
    assert.equal(typeof info.cpuCount, 'number')
    assert.equal(typeof info.memoryMB, 'number')
    const again = await Sandbox.getInfo(sbx.sandboxId)
    assert.equal(again.templateId, info.templateId)
  })

  test('isRunning and connect', async () => {
    const { Sandbox } = e2b
    assert.equal(await sbx.isRunning(), true)
    const other = await Sandbox.connect(sbx.sandboxId)
    assert.equal(other.sandboxId, sbx.sandboxId)
  })

  test('setTimeout moves endAt (milliseconds, rounded up to seconds)', async () => {
    const { Sandbox } = e2b
    await sbx.setTimeout(120_500)
    const short = (await sbx.getInfo()).endAt
    await Sandbox.setTimeout(sbx.sandboxId, 900_000)
    const long = (await sbx.getInfo()).endAt
    assert.ok(long - short > 600_000, `${short.toISOString()} -> ${long.toISOString()}`)
  })

  test('Sandbox.list with the paginator loop and a metadata filter', async () => {
    const { Sandbox } = e2b
    const everything = await all(Sandbox.list())
    assert.ok(everything.some((s) => s.sandboxId === sbx.sandboxId))
    const mine = await all(Sandbox.list({ query: { metadata: { suite: 'node-sandbox' } } }))
    assert.deepEqual(mine.map((s) => s.sandboxId), [sbx.sandboxId])
    const none = await all(Sandbox.list({ query: { metadata: { suite: 'no-such-suite' } } }))
    assert.deepEqual(none, [])
  })

  test('pause, then connect resumes with the files intact', async () => {
    const { Sandbox } = e2b
    const tmp = await Sandbox.create()
    try {
      await tmp.files.write('/tmp/paused.txt', 'kept')
      assert.equal(await tmp.pause(), true)
      assert.equal((await Sandbox.getInfo(tmp.sandboxId)).state, 'paused')
      assert.equal(await Sandbox.pause(tmp.sandboxId), false)
      const resumed = await Sandbox.connect(tmp.sandboxId)
      assert.equal((await resumed.getInfo()).state, 'running')
      assert.equal(await resumed.files.read('/tmp/paused.txt'), 'kept')
    } finally {
      await Sandbox.kill(tmp.sandboxId)
    }
  })

  test('fork: each entry is a running copy', async () => {
    const { Sandbox } = e2b
    await sbx.files.write('/tmp/fork.txt', 'from the parent')
    const forks = await sbx.fork({ count: 2 })
    try {
      assert.equal(forks.length, 2)
      for (const f of forks) {
        assert.ok(f instanceof Sandbox, `${f}`)
        assert.notEqual(f.sandboxId, sbx.sandboxId)
        assert.equal(await f.files.read('/tmp/fork.txt'), 'from the parent')
      }
    } finally {
      for (const f of forks) if (f instanceof Sandbox) await f.kill()
    }
  })

  test('kill: instance true, then static false', async () => {
    const { Sandbox } = e2b
    const tmp = await Sandbox.create()
    assert.equal(await tmp.kill(), true)
    assert.equal(await Sandbox.kill(tmp.sandboxId), false)
  })
})

describe('snapshots', () => {
  test('createSnapshot both ways, create from it, list, filter, delete', async () => {
    const { Sandbox } = e2b
    await sbx.files.write('/tmp/marker.txt', 'before the snapshot')
    const a = await sbx.createSnapshot()
    assert.equal(typeof a.snapshotId, 'string')
    assert.ok(Array.isArray(a.names))
    const b = await Sandbox.createSnapshot(sbx.sandboxId)
    assert.notEqual(a.snapshotId, b.snapshotId)
    // The source keeps running.
    assert.equal((await sbx.commands.run('echo still here')).stdout, 'still here\n')

    const copy = await Sandbox.create(a.snapshotId)
    try {
      assert.notEqual(copy.sandboxId, sbx.sandboxId)
      assert.equal(await copy.files.read('/tmp/marker.txt'), 'before the snapshot')
    } finally {
      await copy.kill()
    }

    const everything = (await all(Sandbox.listSnapshots())).map((s) => s.snapshotId)
    assert.ok(everything.includes(a.snapshotId) && everything.includes(b.snapshotId))

    const filtered = (await Sandbox.listSnapshots({ sandboxId: sbx.sandboxId }).nextItems()).map((s) => s.snapshotId)
    assert.ok(filtered.includes(a.snapshotId) && filtered.includes(b.snapshotId), `${filtered}`)
    const bound = (await all(sbx.listSnapshots())).map((s) => s.snapshotId)
    assert.deepEqual([...bound].sort(), [...filtered].sort())

    assert.equal(await Sandbox.deleteSnapshot(a.snapshotId), true)
    assert.equal(await Sandbox.deleteSnapshot(a.snapshotId), false)
    assert.equal(await Sandbox.deleteSnapshot(b.snapshotId), true)
    const left = (await all(sbx.listSnapshots())).map((s) => s.snapshotId)
    assert.ok(!left.includes(a.snapshotId) && !left.includes(b.snapshotId), `${left}`)
  })

  test('pages of one, then nextItems after the last page rejects', async () => {
    const { Sandbox } = e2b
    const made = [await sbx.createSnapshot(), await sbx.createSnapshot()]
    try {
      const p = Sandbox.listSnapshots({ sandboxId: sbx.sandboxId, limit: 1 })
      assert.equal(p.hasNext, true)
      const seen = []
      while (p.hasNext) {
        const page = await p.nextItems()
        assert.ok(page.length <= 1)
        seen.push(...page.map((s) => s.snapshotId))
      }
      for (const s of made) assert.ok(seen.includes(s.snapshotId))
      assert.equal(p.hasNext, false)
      await assert.rejects(p.nextItems(), (e) => {
        assert.ok(e instanceof Error)
        assert.equal(e.message, 'No more items to fetch')
        return true
      })
      const sp = Sandbox.list({ limit: 1 })
      await all(sp)
      await assert.rejects(sp.nextItems(), /No more items to fetch/)
    } finally {
      for (const s of made) await Sandbox.deleteSnapshot(s.snapshotId)
    }
  })
})

describe('errors', () => {
  test('unknown sandbox: SandboxNotFoundError, a NotFoundError and a SandboxError', async () => {
    const { Sandbox, SandboxNotFoundError, NotFoundError, SandboxError } = e2b
    const unknown = 'i0000000000000000000x'
    await assert.rejects(Sandbox.connect(unknown), (e) => {
      assert.ok(e instanceof SandboxNotFoundError, `${e.name}: ${e.message}`)
      assert.ok(e instanceof NotFoundError && e instanceof SandboxError)
      assert.equal(e.name, 'SandboxNotFoundError')
      return true
    })
    await assert.rejects(Sandbox.getInfo(unknown), NotFoundError)
    await assert.rejects(Sandbox.createSnapshot(unknown), NotFoundError)
    assert.equal(await Sandbox.kill(unknown), false)
  })

  test('wrong API key: AuthenticationError, not a SandboxError', async () => {
    const { Sandbox, AuthenticationError, SandboxError } = e2b
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey: 'e2b_0000' }), (e) => {
      assert.ok(e instanceof AuthenticationError, `${e.name}: ${e.message}`)
      assert.ok(!(e instanceof SandboxError))
      return true
    })
  })

  test("per-call options override the sandbox's own on instance methods", async () => {
    const { AuthenticationError } = e2b
    await assert.rejects(sbx.getInfo({ apiKey: 'e2b_0000' }), AuthenticationError)
    await assert.rejects(sbx.createSnapshot({ apiKey: 'e2b_0000' }), AuthenticationError)
    assert.equal((await sbx.getInfo({})).sandboxId, sbx.sandboxId)
  })

  test('invalid list order: InvalidArgumentError, thrown synchronously', () => {
    const { Sandbox, InvalidArgumentError } = e2b
    assert.throws(() => Sandbox.list({ order: 'sideways' }), InvalidArgumentError)
  })
})
