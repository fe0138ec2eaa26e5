// `sandbox.git` through the `e2b` package against a real sandboxd: a repository pushed to and
// pulled from a bare remote in the guest (`file://`, no network), parsed status and branches,
// and E2B's error classes (GitUpstreamError with the JS wording, InvalidArgumentError).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

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

test('init, commit, push to a bare remote, clone, pull', async () => {
  const { git, files } = sbx
  const repo = '/home/user/repo'
  await git.init('/home/user/remote.git', { bare: true, initialBranch: 'main' })
  await git.init(repo, { initialBranch: 'main' })
  await git.configureUser('Ada', 'ada@example.com', { scope: 'local', path: repo })
  await files.write(`${repo}/a.txt`, 'one\n')
  let st = await git.status(repo)
  assert.equal(st.currentBranch, 'main')
  assert.deepEqual(st.fileStatus.map((f) => [f.name, f.status, f.staged]), [['a.txt', 'untracked', false]])
  assert.equal(st.hasUntracked, true)
  assert.equal(st.isClean, false)
  await git.add(repo)
  await git.commit(repo, 'first', { authorName: 'Bob', authorEmail: 'bob@example.com' })
  assert.equal((await sbx.commands.run(`git -C ${repo} log --format='%an %s'`)).stdout, 'Bob first\n')

  await git.remoteAdd(repo, 'origin', 'file:///home/user/remote.git')
  assert.equal(await git.remoteGet(repo, 'origin'), 'file:///home/user/remote.git')
  assert.equal(await git.remoteGet(repo, 'missing'), undefined)
  await git.push(repo, { remote: 'origin', branch: 'main' })
  st = await git.status(repo)
  assert.equal(st.upstream, 'origin/main')
  assert.equal(st.isClean, true)

  await git.clone('file:///home/user/remote.git', { path: '/home/user/other' })
  await files.write('/home/user/other/b.txt', 'two\n')
  await git.add('/home/user/other', { files: ['b.txt'] })
  await git.commit('/home/user/other', 'second', { authorName: 'Cy', authorEmail: 'cy@example.com' })
  await git.push('/home/user/other')
  await git.pull(repo)
  assert.equal(await files.read(`${repo}/b.txt`), 'two\n')

  await git.createBranch(repo, 'feature')
  const b = await git.branches(repo)
  assert.deepEqual(b.branches, ['feature', 'main'])
  assert.equal(b.currentBranch, 'feature')
})

test('errors: missing upstream, bad options, plain command failures', async () => {
  const { git } = sbx
  await git.init('/home/user/lonely', { initialBranch: 'main' })
  await assert.rejects(git.pull('/home/user/lonely'), (e) => {
    assert.ok(e instanceof e2b.GitUpstreamError, `${e.name}: ${e.message}`)
    assert.match(e.message, /\{ setUpstream: true \}/)
    return true
  })
  await assert.rejects(git.reset('/home/user/lonely', { mode: 'sideways' }), e2b.InvalidArgumentError)
  await assert.rejects(git.restore('/home/user/lonely', { paths: [] }), e2b.InvalidArgumentError)
  await assert.rejects(git.checkoutBranch('/home/user/lonely', 'nope'), (e) => {
    assert.ok(e instanceof e2b.CommandExitError)
    assert.match(e.stderr, /nope/)
    return true
  })
  assert.equal(await git.getConfig('user.nothing', { scope: 'local', path: '/home/user/lonely' }), undefined)
})
