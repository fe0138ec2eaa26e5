// ESM entry of the `e2b` package: the same objects as the CommonJS entry (index.js).
import e2b from './index.js'

export const {
  Sandbox,
  Commands,
  CommandHandle,
  Filesystem,
  FileType,
  SandboxPaginator,
  SnapshotPaginator,
  SandboxError,
  TimeoutError,
  InvalidArgumentError,
  NotEnoughSpaceError,
  NotFoundError,
  FileNotFoundError,
  SandboxNotFoundError,
  TemplateError,
  RateLimitError,
  AuthenticationError,
  CommandExitError,
} = e2b
export default e2b
