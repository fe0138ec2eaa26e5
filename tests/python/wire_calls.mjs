// The same JS SDK calls, run with E2B's official JS SDK and with ours (module path in
// E2B_MODULE) against tests/python/fake_e2b.py, whose recording test_wire_js.py compares.
const { Sandbox, Secret, Volume } = await import(process.env.E2B_MODULE)
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
// Secrets and volumes (REST, and the volume content API at E2B_VOLUME_API_URL).
await Secret.create('n', 'v', { metadata: { a: 'b' } })
await Secret.update('n', 'v2')
await Secret.getInfo('n')
await Secret.exists('n')
const sp = Secret.list({ limit: 1 })
while (sp.hasNext) await sp.nextItems()
await Secret.destroy('n')
const vol = await Volume.create('vol')
await Volume.list()
await Volume.getInfo('volfake1')
await vol.writeFile('/a.txt', 'hi', { mode: 0o644 })
await vol.readFile('/a.txt')
await vol.list('/', { depth: 2 })
await vol.makeDir('/d', { force: true })
await vol.getInfo('/a.txt')
await vol.updateMetadata('/a.txt', { mode: 0o600 })
await vol.remove('/a.txt')
await Volume.destroy('volfake1')
console.log('done')
