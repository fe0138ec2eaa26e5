// The JavaScript samples of the seed document (tests/node/seed/*.mjs, the documentation's code
// unchanged), each run as its own program against a real sandboxd. Samples that use variables
// the documentation leaves to the reader get them from seed-prelude.mjs.
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { runNode, startSandboxd } from './sandboxd.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const prelude = pathToFileURL(path.join(here, 'seed-prelude.mjs')).href

let server
let Sandbox
let base

before(async () => {
  server = await startSandboxd()
  ;({ Sandbox } = await import('e2b'))
  base = await Sandbox.create()
})

after(async () => {
  await base?.kill().catch(() => {})
  await server?.stop()
})

async function sample(name, env = {}) {
  const r = await runNode(['--import', prelude, path.join(here, 'seed', name)], { env: { ...server.env, ...env } })
  assert.equal(r.code, 0, `${name} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  return r.stdout
}

async function runningSandboxIds() {
  const p = Sandbox.list({ query: { state: ['running'] } })
  const ids = []
  while (p.hasNext) ids.push(...(await p.nextItems()).map((s) => s.sandboxId))
  return ids
}

test('create a snapshot from a running sandbox', async () => {
  const out = await sample('1-create-snapshot.mjs')
  assert.match(out, /^Snapshot ID: \S+$/m)
})

test('create a snapshot by sandbox ID', async () => {
  const out = await sample('2-create-snapshot-by-id.mjs', { E2B_TEST_SANDBOX_ID: base.sandboxId })
  const id = /^Snapshot ID: (\S+)$/m.exec(out)?.[1]
  assert.ok(id, out)
  const ids = (await Sandbox.listSnapshots({ sandboxId: base.sandboxId }).nextItems()).map((s) => s.snapshotId)
  assert.ok(ids.includes(id), `${id} not in ${ids}`)
})

test('create a sandbox from a snapshot', async () => {
  const before = await runningSandboxIds()
  await sample('3-create-from-snapshot.mjs', { E2B_TEST_SANDBOX_ID: base.sandboxId })
  const now = await runningSandboxIds()
  const created = now.filter((id) => !before.includes(id))
  assert.equal(created.length, 1, `new sandboxes: ${created}`)
})

test('list snapshots with the paginator loop', async () => {
  await sample('4-list-snapshots.mjs')
})

test('filter snapshots by sandbox', async () => {
  await sample('5-list-snapshots-by-sandbox.mjs')
})

test('delete a snapshot', async () => {
  const snap = await base.createSnapshot()
  await sample('6-delete-snapshot.mjs', { E2B_TEST_SNAPSHOT_ID: snap.snapshotId })
  assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), false, 'the sample should have deleted it')
})
