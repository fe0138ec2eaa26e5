// The same JS SDK calls, run with E2B's official JS SDK and with ours (module path in
// E2B_MODULE) against tests/python/fake_e2b.py, whose recording test_wire_js.py compares.
const { Sandbox } = await import(process.env.E2B_MODULE)
const SID = 'ifake0000000000000001'

const s = await Sandbox.create({
  metadata: { k: 'v' },
  envs: { A: '1' },
  timeoutMs: 120_000,
  allowInternetAccess: false,
  lifecycle: { onTimeout: 'pause', autoResume: true },
  network: { allowOut: ['1.1.1.1'], denyOut: ['0.0.0.0/0'], allowPublicTraffic: false, maskRequestHost: 'localhost:${PORT}' },
})
// JS 2.51 spells the filesystem-only auto-pause `keepMemory: false` (ours also takes `mode`).
await Sandbox.create('base', { lifecycle: { onTimeout: { action: 'pause', keepMemory: false } } })
await Sandbox.create({ lifecycle: { onTimeout: 'kill' } })
await Sandbox.connect(SID, { onResume: 'reboot' })
await Sandbox.connect(SID, { timeoutMs: 30_000 })
await Sandbox.pause(SID, { keepMemory: false })
await s.pause()
await Sandbox.getMetrics(SID, { start: new Date('2026-01-02T00:00:00Z'), end: new Date('2026-01-03T00:00:00Z') })
await Sandbox.updateNetwork(SID, { denyOut: ['0.0.0.0/0'], allowInternetAccess: false })
await s.createSnapshot()
await Sandbox.kill(SID)
console.log('done')
