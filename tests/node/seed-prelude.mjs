// Loaded with `node --import` before a seed sample, to give the sample the free variables the
// documentation leaves to the reader: `sandboxId`, `sandbox` and `snapshot`
// (from E2B_TEST_SANDBOX_ID and E2B_TEST_SNAPSHOT_ID). The sample files themselves are the
// documentation's code, unchanged.
import { Sandbox } from 'e2b'

if (process.env.E2B_TEST_SANDBOX_ID) {
  globalThis.sandboxId = process.env.E2B_TEST_SANDBOX_ID
  globalThis.sandbox = await Sandbox.connect(process.env.E2B_TEST_SANDBOX_ID)
}
if (process.env.E2B_TEST_SNAPSHOT_ID) {
  globalThis.snapshot = { snapshotId: process.env.E2B_TEST_SNAPSHOT_ID, names: [] }
}
