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

function wrap(fn) {
  const wrapped = function (...args) {
    const callsite = {}
    Error.captureStackTrace(callsite, wrapped)
    let out
    try {
      out = fn.apply(this, args)
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
      Object.defineProperty(target, key, { ...desc, value: wrap(desc.value) })
    }
  }
}

for (const value of Object.values(native)) {
  // A napi class has methods or getters on its prototype; a plain function has only `constructor`.
  if (typeof value === 'function' && value.prototype && Object.getOwnPropertyNames(value.prototype).length > 1) wrapClass(value)
}

// The embedded default (no E2B settings at all) starts a local sandboxd when none answers; offer
// the one the install script put next to the addon, if any.
const { registerSandboxd, ...api } = native
const bundledSandboxd = path.join(__dirname, 'bin', 'sandboxd')
if (registerSandboxd) registerSandboxd(bundledSandboxd)

const { fromNative, ...errorClasses } = errors
module.exports = { ...api, ...errorClasses }
