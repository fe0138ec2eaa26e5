// Error classes with the names and hierarchy of E2B's JS SDK, and the one function that turns
// an error from the native addon into one of them.
//
// The addon rejects with a plain Error whose message starts with `[e2b:<kind>] `, where <kind>
// is the core's stable `ErrorKind::as_str()`; for `command_exit` the rest of the message is the
// command result as JSON. See bindings-node/src/error.rs for the other side.
'use strict'

/** Base class for all sandbox errors. */
class SandboxError extends Error {
  constructor(message, stackTrace) {
    super(message)
    this.name = 'SandboxError'
    if (stackTrace) this.stack = stackTrace
  }
}

/** A request, command or sandbox timed out. */
class TimeoutError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'TimeoutError'
  }
}

/** An invalid argument was provided. */
class InvalidArgumentError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'InvalidArgumentError'
  }
}

/** There is not enough disk space. */
class NotEnoughSpaceError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'NotEnoughSpaceError'
  }
}

/** A resource was not found (base of FileNotFoundError and SandboxNotFoundError). */
class NotFoundError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'NotFoundError'
  }
}

/** A file or directory was not found inside a sandbox. */
class FileNotFoundError extends NotFoundError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'FileNotFoundError'
  }
}

/** A sandbox was not found (it doesn't exist or is no longer running). */
class SandboxNotFoundError extends NotFoundError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'SandboxNotFoundError'
  }
}

/** The template's envd is too old for this SDK. */
class TemplateError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'TemplateError'
  }
}

/** The API rate limit was exceeded. */
class RateLimitError extends SandboxError {
  constructor(message, stackTrace) {
    super(message, stackTrace)
    this.name = 'RateLimitError'
  }
}

/** Authentication failed (not a SandboxError, as in E2B's SDK). */
class AuthenticationError extends Error {
  constructor(message) {
    super(message)
    this.name = 'AuthenticationError'
  }
}

/** A command exited with a non-zero exit code; carries the command result. */
class CommandExitError extends SandboxError {
  #result
  constructor(result) {
    super(result.error || `Command exited with code ${result.exitCode}`)
    this.name = 'CommandExitError'
    this.#result = result
  }
  /** Exit code of the command. */
  get exitCode() {
    return this.#result.exitCode
  }
  /** Error message of the command execution, if any. */
  get error() {
    return this.#result.error
  }
  /** Standard output of the command. */
  get stdout() {
    return this.#result.stdout
  }
  /** Standard error of the command. */
  get stderr() {
    return this.#result.stderr
  }
}

/** The service is temporarily busy (HTTP 503); retry later. Not a SandboxError, as in E2B's SDK. */
class ServiceBusyError extends Error {
  constructor(message, stackTrace) {
    super(message)
    this.name = 'ServiceBusyError'
    this.statusCode = 503
    if (stackTrace) this.stack = stackTrace
  }
}

// Named errors of E2B features this SDK does not implement yet (git, templates, secrets,
// volumes): exported with E2B's names and hierarchy so `instanceof` checks keep working.
function named(name, Base) {
  const C = class extends Base {
    constructor(message, stackTrace) {
      super(message, stackTrace)
      this.name = name
    }
  }
  Object.defineProperty(C, 'name', { value: name })
  return C
}
/** Git authentication failed. */
const GitAuthError = named('GitAuthError', AuthenticationError)
/** Git upstream tracking is missing. */
const GitUpstreamError = named('GitUpstreamError', SandboxError)
/** A template build failed. */
const BuildError = named('BuildError', Error)
/** A file upload of a template build failed. */
const FileUploadError = named('FileUploadError', BuildError)
/** Base class of secret errors. */
const SecretError = named('SecretError', Error)
/** A secret was not found. */
const SecretNotFoundError = named('SecretNotFoundError', SecretError)
/** Base class of volume errors. */
const VolumeError = named('VolumeError', Error)
/** A volume was not found. */
const VolumeNotFoundError = named('VolumeNotFoundError', VolumeError)
/** A path was not found inside a volume. */
const VolumePathNotFoundError = named('VolumePathNotFoundError', VolumeError)

const CLASS_OF_KIND = {
  sandbox: SandboxError,
  service_busy: ServiceBusyError,
  timeout: TimeoutError,
  invalid_argument: InvalidArgumentError,
  not_enough_space: NotEnoughSpaceError,
  not_found: NotFoundError,
  sandbox_not_found: SandboxNotFoundError,
  file_not_found: FileNotFoundError,
  template: TemplateError,
  build: BuildError,
  file_upload: FileUploadError,
  rate_limit: RateLimitError,
  authentication: AuthenticationError,
  git_auth: GitAuthError,
  git_upstream: GitUpstreamError,
  secret: SecretError,
  secret_not_found: SecretNotFoundError,
  volume: VolumeError,
  volume_not_found: VolumeNotFoundError,
  volume_path_not_found: VolumePathNotFoundError,
  // E2B's paginators throw a plain Error after the last page.
  no_more_items: Error,
}

const NATIVE_PREFIX = /^\[e2b:([a-z_]+)\] ([\s\S]*)$/

/**
 * The named error for an error thrown by the native addon (anything else is returned as is).
 * `callsite`, when given, is an Error captured where the user called the method: its stack
 * replaces the useless one of an error created in a promise callback.
 */
function fromNative(err, callsite) {
  if (!(err instanceof Error)) return err
  const m = NATIVE_PREFIX.exec(err.message)
  if (!m) return err
  const [, kind, rest] = m
  let out
  if (kind === 'command_exit') {
    const r = JSON.parse(rest)
    out = new CommandExitError({ exitCode: r.exitCode, error: r.error ?? undefined, stdout: r.stdout, stderr: r.stderr })
  } else {
    const Cls = CLASS_OF_KIND[kind] ?? SandboxError
    // The core words the upstream hint with Python's parameter name.
    out = new Cls(kind === 'git_upstream' ? rest.replaceAll('set_upstream=True', '{ setUpstream: true }') : rest)
  }
  if (callsite?.stack) out.stack = `${out.name}: ${out.message}\n${callsite.stack.split('\n').slice(1).join('\n')}`
  return out
}

module.exports = {
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
  ServiceBusyError,
  GitAuthError,
  GitUpstreamError,
  BuildError,
  FileUploadError,
  SecretError,
  SecretNotFoundError,
  VolumeError,
  VolumeNotFoundError,
  VolumePathNotFoundError,
  fromNative,
}
