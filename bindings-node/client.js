// `E2B`: a client whose classes carry its connection options as the defaults of every static
// call (E2B's client factory). Per-call options win; an option set to `undefined` falls back to
// the bound value. Clients are isolated from each other and from the top-level classes.
'use strict'

// Where each static method takes its options object (index of the argument). Every static
// method of the bound classes must be listed: one that is not would silently use the
// environment instead of the client's options, so `new E2B()` throws instead (every test that makes a client checks this).
const OPTS_AT = {
  Sandbox: {
    create: (args) => (typeof args[0] === 'string' ? 1 : 0),
    connect: 1,
    kill: 1,
    setTimeout: 2,
    getMetrics: 1,
    updateNetwork: 2,
    getFullInfo: 1,
    getInfo: 1,
    betaPause: 1,
    pause: 1,
    fork: 1,
    list: 0,
    createSnapshot: 1,
    listSnapshots: 0,
    deleteSnapshot: 1,
  },
  Template: {
    build: (args) => (typeof args[1] === 'string' ? 2 : 1),
    buildInBackground: (args) => (typeof args[1] === 'string' ? 2 : 1),
    getBuildStatus: 1,
    exists: 1,
    aliasExists: 1,
    assignTags: 2,
    removeTags: 2,
    getTags: 1,
    // No request: nothing to bind.
    toJSON: null,
    toDockerfile: null,
  },
  Secret: { create: 2, update: 2, getInfo: 1, exists: 1, destroy: 1, list: 0, fill: null, iamToken: null },
  Volume: { create: 1, connect: 1, getInfo: 1, list: 0, destroy: 1 },
}

function merge(bound, opts) {
  const merged = { ...bound }
  for (const [k, v] of Object.entries(opts ?? {})) if (v !== undefined) merged[k] = v
  return merged
}

/** The static methods of `cls` (own and inherited up to Function.prototype). */
function staticMethods(cls) {
  const out = new Set()
  for (let c = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(c))) {
      if (k !== 'prototype' && typeof d.value === 'function') out.add(k)
    }
  }
  return out
}

function bind(name, cls, bound) {
  const missing = [...staticMethods(cls)].filter((k) => !(k in OPTS_AT[name]))
  if (missing.length) throw new Error(`e2b: E2B cannot bind ${name}.${missing.join(', ')} (internal error)`)
  const Bound = class extends cls {}
  for (const [method, at] of Object.entries(OPTS_AT[name])) {
    if (at === null || typeof cls[method] !== 'function') continue
    const fn = cls[method]
    Object.defineProperty(Bound, method, {
      configurable: true,
      writable: true,
      value: function (...args) {
        const i = typeof at === 'function' ? at(args) : at
        while (args.length < i) args.push(undefined)
        args[i] = merge(bound, args[i])
        return fn.apply(cls, args)
      },
    })
  }
  Object.defineProperty(Bound, 'name', { value: cls.name })
  Object.defineProperty(Bound, 'boundOpts', { value: bound })
  return Bound
}

module.exports = function makeClient({ Sandbox, Template, Secret, Volume }, refuseUnsupported) {
  /** `Template()` of a client: a new template whose static calls use the client's options. */
  function boundTemplate(bound) {
    const Cls = bind('Template', Template, bound)
    const make = Template
    const T = function Template(options) {
      return make(options)
    }
    for (const k of staticMethods(Template)) T[k] = Cls[k]
    T.prototype = Template.prototype
    Object.defineProperty(T, 'boundOpts', { value: bound })
    return T
  }

  class E2B {
    /**
     * A client with `opts` (connection options) bound as the defaults of every call made
     * through `client.Sandbox`, `client.Volume`, `client.Template` and `client.Secret`.
     */
    constructor(opts) {
      const bound = { ...(opts ?? {}) }
      delete bound.signal
      // Options this SDK does not implement are refused now, not at the first call.
      refuseUnsupported([bound])
      this.Sandbox = bind('Sandbox', Sandbox, bound)
      this.Template = boundTemplate(bound)
      this.Secret = bind('Secret', Secret, bound)
      this.Volume = bind('Volume', Volume, bound)
    }
  }
  return { E2B }
}
