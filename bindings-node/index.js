// The `e2b` package: the native addon (built from bindings-node/src by the install script)
// plus E2B's error classes. Every method of the native classes is wrapped once, here, so that
// errors from the addon reach the caller as SandboxNotFoundError, CommandExitError, ...
// with the caller's stack. Nothing else happens in JavaScript.
'use strict'

const path = require('node:path')
const errors = require('./errors')

function loadNative() {
  const file = path.join(__dirname, 'e2b.node')
  try {
    return require(file)
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new Error(
        `e2b: the native addon ${file} is missing. It is built by the package's install script; ` +
          `run \`npm run build\` in ${path.dirname(__dirname)} (needs cargo).`,
        { cause: e },
      )
    }
    throw e
  }
}

const native = loadNative()

// Options of E2B's SDK that this SDK does not implement. They are refused (the core words the
// error), never ignored; `validateApiKey` is accepted because it has no effect in E2B's SDK either.
const UNSUPPORTED_OPTIONS = ['proxy', 'logger', 'retries', 'apiHeaders', 'signal']

function refuseUnsupported(args) {
  for (const a of args) {
    if (a === null || typeof a !== 'object' || Array.isArray(a) || ArrayBuffer.isView(a)) continue
    for (const k of UNSUPPORTED_OPTIONS) if (a[k] !== undefined && a[k] !== null) throw native.unsupportedOption(k)
  }
}

// `onExit` callbacks (watchDir) get the addon's error: name it like a rejection would be.
function withNamedErrors(args) {
  return args.map((a) =>
    a !== null && typeof a === 'object' && typeof a.onExit === 'function'
      ? { ...a, onExit: (e) => a.onExit(e == null ? undefined : errors.fromNative(e)) }
      : a,
  )
}

// The native methods that return a value rather than a promise (`Sandbox.list`, ...): a refused
// option throws there; everywhere else it rejects, as any other error of an async call.
const SYNC_METHODS = {
  Sandbox: new Set(['list', 'listSnapshots', 'getHost', 'getMcpUrl']),
  Secret: new Set(['list', 'fill', 'iamToken']),
}

function wrap(fn, sync = false) {
  const wrapped = function (...args) {
    const callsite = {}
    Error.captureStackTrace(callsite, wrapped)
    let out
    try {
      refuseUnsupported(args)
    } catch (e) {
      const err = errors.fromNative(e, callsite)
      if (sync) throw err
      return Promise.reject(err)
    }
    try {
      out = fn.apply(this, withNamedErrors(args))
    } catch (e) {
      throw errors.fromNative(e, callsite)
    }
    if (out instanceof Promise) {
      return out.then(
        // `fork` resolves to an array of sandboxes and per-fork errors: name those errors too.
        (v) => (Array.isArray(v) ? v.map((x) => (x instanceof Error ? errors.fromNative(x) : x)) : v),
        (e) => {
          throw errors.fromNative(e, callsite)
        },
      )
    }
    return out
  }
  Object.defineProperty(wrapped, 'name', { value: fn.name })
  Object.defineProperty(wrapped, 'length', { value: fn.length })
  return wrapped
}

// Replace plain function properties (methods, static methods) of a native class; getters and
// the constructor stay as they are. (Static methods are declared `configurable` in the Rust
// source for this.)
function wrapClass(cls) {
  for (const target of [cls, cls.prototype]) {
    for (const [key, desc] of Object.entries(Object.getOwnPropertyDescriptors(target))) {
      if (key === 'constructor' || typeof desc.value !== 'function' || key === 'prototype') continue
      const sync = SYNC_METHODS[cls.name]?.has(key) ?? false
      Object.defineProperty(target, key, { ...desc, value: wrap(desc.value, sync) })
    }
  }
}

// A napi class has methods or getters on its prototype, or static methods (`Secret`); a plain
// function has neither.
const isClass = (value) =>
  typeof value === 'function' &&
  value.prototype &&
  (Object.getOwnPropertyNames(value.prototype).length > 1 ||
    Object.entries(Object.getOwnPropertyDescriptors(value)).some(([k, d]) => k !== 'prototype' && typeof d.value === 'function'))
for (const value of Object.values(native)) {
  if (isClass(value)) wrapClass(value)
}

// `Sandbox.create` / `connect` as E2B's: called on a subclass, they use its `defaultTemplate`
// and return an instance of it (its methods on top of the native ones); `volumeMounts` takes
// `Volume`s or names (the addon takes names).
{
  const { create, connect } = native.Sandbox
  const Base = native.Sandbox
  // Callable rule transforms and `allowOut` / `denyOut` selectors run here, as in E2B's SDK: a
  // transform gets `{ iam: { tokens } }` (placeholders of the registered workload tokens), a
  // selector `{ allTraffic, rules }`; the addon gets plain lists and header objects.
  const resolveCallables = (o) => {
    const network = o.network
    if (!network || typeof network !== 'object') return o
    const registered = Object.keys(o.iam?.tokens ?? {})
    const tokens = new Proxy({}, {
      get: (_, name) => {
        if (typeof name !== 'string') return undefined
        if (!registered.includes(name)) {
          throw new errors.InvalidArgumentError(
            `Network transform references iam token '${name}', which is not registered (iam.tokens)`,
          )
        }
        return '${e2b.identity.tokens.' + name + '}'
      },
      has: (_, name) => registered.includes(name),
      ownKeys: () => registered,
      getOwnPropertyDescriptor: (_, name) =>
        registered.includes(name) ? { enumerable: true, configurable: true, value: '${e2b.identity.tokens.' + name + '}' } : undefined,
    })
    const rules = {}
    for (const [host, list] of Object.entries(network.rules ?? {})) {
      rules[host] = (list ?? []).map((r) =>
        typeof r?.transform === 'function' ? { ...r, transform: r.transform({ iam: { tokens } }) } : r,
      )
    }
    const select = (v) => (typeof v === 'function' ? v({ allTraffic: ALL_TRAFFIC, rules }) : v)
    const resolved = { ...network, allowOut: select(network.allowOut), denyOut: select(network.denyOut) }
    if (network.rules !== undefined) resolved.rules = rules
    return { ...o, network: resolved }
  }
  const names = (o) => {
    if (o && typeof o === 'object') o = resolveCallables(o)
    if (!o || typeof o !== 'object' || !o.volumeMounts) return o
    const volumeMounts = {}
    for (const [path, v] of Object.entries(o.volumeMounts)) volumeMounts[path] = typeof v === 'string' ? v : v?.name
    return { ...o, volumeMounts }
  }
  const adopt = (Cls, sbx) => {
    if (Cls !== Base && typeof Cls === 'function' && Cls.prototype instanceof Base) Object.setPrototypeOf(sbx, Cls.prototype)
    return sbx
  }
  Object.defineProperty(Base, 'defaultTemplate', { value: 'base', writable: true, configurable: true })
  // A subclass may carry options bound to it (`static boundOpts`, as E2B's client factory and
  // packages built on it make them): per-call options win over them.
  const bound = (Cls, opts) => {
    if (Cls === Base || !Cls?.boundOpts) return opts
    const merged = { ...Cls.boundOpts }
    for (const [k, v] of Object.entries(opts ?? {})) if (v !== undefined) merged[k] = v
    return merged
  }
  Object.defineProperty(Base, 'create', {
    configurable: true,
    writable: true,
    value: async function (...args) {
      const template = typeof args[0] === 'string' ? args[0] : undefined
      const opts = names(bound(this, template === undefined ? args[0] : args[1]))
      let t = template
      if (t === undefined && !opts?.template && !opts?.mcp && this !== Base && typeof this?.defaultTemplate === 'string') {
        t = this.defaultTemplate
      }
      const a = t === undefined ? [opts] : [t, opts]
      return adopt(this, await create.apply(Base, a))
    },
  })
  Object.defineProperty(Base, 'connect', {
    configurable: true,
    writable: true,
    value: async function (sandboxId, opts) {
      return adopt(this, await connect.call(Base, sandboxId, bound(this, opts)))
    },
  })
}

// `ConnectionConfig.getSignal` (E2B's): an AbortSignal for a request's timeout, joined with the
// caller's own signal. A JS platform object, so it is made here.
native.ConnectionConfig.prototype.getSignal = function (requestTimeoutMs, signal) {
  const ms = requestTimeoutMs ?? this.requestTimeoutMs
  const timeout = ms ? AbortSignal.timeout(ms) : undefined
  if (timeout && signal) return AbortSignal.any([timeout, signal])
  return timeout ?? signal
}

// `files.read` / `Volume.readFile` / `writeFile` take and give the web types E2B's SDK does
// (Blob, streams, ArrayBuffer); the addon moves bytes, these wrappers only convert.
{
  const webFormats = (read) =>
    async function (path, opts) {
      const format = opts?.format
      if (format !== 'blob' && format !== 'stream') return read.call(this, path, opts)
      const bytes = await read.call(this, path, { ...opts, format: 'bytes' })
      if (format === 'blob') return new Blob([bytes])
      return new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 65536) controller.enqueue(bytes.subarray(i, i + 65536))
          controller.close()
        },
      })
    }
  native.Filesystem.prototype.read = webFormats(native.Filesystem.prototype.read)
  const { readFile, writeFile } = native.Volume.prototype
  const volumeRead = webFormats(readFile)
  native.Volume.prototype.readFile = async function (path, opts) {
    if (opts?.streamIdleTimeoutMs != null) throw errors.fromNative(native.unsupportedOption('streamIdleTimeoutMs'))
    return volumeRead.call(this, path, opts)
  }
  native.Volume.prototype.writeFile = async function (path, data, opts) {
    let body = data
    if (data instanceof ArrayBuffer) body = new Uint8Array(data)
    else if (typeof Blob !== 'undefined' && data instanceof Blob) body = new Uint8Array(await data.arrayBuffer())
    else if (data && typeof data.getReader === 'function') body = new Uint8Array(await new Response(data).arrayBuffer())
    return writeFile.call(this, path, body, opts)
  }
}

// The embedded default (no E2B settings at all) starts a local sandboxd when none answers; offer
// the one the install script put next to the addon, if any.
const {
  registerSandboxd,
  unsupportedOption,
  TemplateCore,
  templateGetBuildStatus,
  templateExists,
  templateAssignTags,
  templateRemoveTags,
  templateGetTags,
  templateReadyCmd,
  templateStripAnsi,
  ...api
} = native
api.getSignature = wrap(api.getSignature)
Object.assign(
  api,
  require('./template')(
    {
      TemplateCore,
      templateGetBuildStatus: wrap(templateGetBuildStatus),
      templateExists: wrap(templateExists),
      templateAssignTags: wrap(templateAssignTags),
      templateRemoveTags: wrap(templateRemoveTags),
      templateGetTags: wrap(templateGetTags),
      templateReadyCmd: wrap(templateReadyCmd),
      templateStripAnsi,
    },
    errors,
  ),
)
const bundledSandboxd = path.join(__dirname, 'bin', 'sandboxd')
if (registerSandboxd) registerSandboxd(bundledSandboxd)

// `E2B`: the client factory over the classes above (client.js).
const client = require('./client')(
  { Sandbox: api.Sandbox, Template: api.Template, Secret: api.Secret, Volume: api.Volume },
  (args) => {
    try {
      refuseUnsupported(args)
    } catch (e) {
      throw errors.fromNative(e)
    }
  },
)
api.E2B = client.E2B

const { fromNative, ...errorClasses } = errors
// `import Sandbox from 'e2b'`, as with E2B's package.
/** CIDR range that represents all traffic (for `network.denyOut` / `allowOut`). */
const ALL_TRAFFIC = '0.0.0.0/0'
module.exports = { ...api, ...errorClasses, ALL_TRAFFIC, default: api.Sandbox }
