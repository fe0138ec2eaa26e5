// E2B's `Template()` builder for the `e2b` package: a thin facade over the native
// `TemplateCore` (the Rust core records steps exactly as E2B's SDK does, parses Dockerfiles,
// hashes and uploads files, polls the build and streams its logs). Here: argument shapes
// (string or array, options objects, ReadyCmd), chaining, and E2B's JS classes (LogEntry, ...).
'use strict'

const path = require('node:path')

module.exports = function makeTemplate(native, errors) {
  const { TemplateCore, templateGetBuildStatus, templateExists, templateAssignTags, templateRemoveTags, templateGetTags } =
    native
  const { templateReadyCmd, templateStripAnsi } = native

  /** A ready command (`waitForPort(…)`, …) for `setStartCmd` / `setReadyCmd`. */
  class ReadyCmd {
    constructor(cmd) {
      this.cmd = cmd
    }
    getCmd() {
      return this.cmd
    }
  }
  const waitForPort = (port) => new ReadyCmd(templateReadyCmd('port', String(port)))
  const waitForURL = (url, statusCode = 200) => new ReadyCmd(templateReadyCmd('url', url, statusCode))
  const waitForProcess = (processName) => new ReadyCmd(templateReadyCmd('process', processName))
  const waitForFile = (filename) => new ReadyCmd(templateReadyCmd('file', filename))
  const waitForTimeout = (timeout) => new ReadyCmd(templateReadyCmd('timeout', String(timeout)))

  class LogEntry {
    constructor(timestamp, level, message) {
      this.timestamp = timestamp
      this.level = level
      this.message = templateStripAnsi(message)
    }
    toString() {
      return `[${this.timestamp.toISOString()}] [${this.level}] ${this.message}`
    }
  }
  class LogEntryStart extends LogEntry {
    constructor(timestamp, message) {
      super(timestamp, 'debug', message)
    }
  }
  class LogEntryEnd extends LogEntry {
    constructor(timestamp, message) {
      super(timestamp, 'debug', message)
    }
  }
  const entry = (e) =>
    e.kind === 'start'
      ? new LogEntryStart(e.timestamp, e.message)
      : e.kind === 'end'
        ? new LogEntryEnd(e.timestamp, e.message)
        : new LogEntry(e.timestamp, e.level, e.message)

  const ORDER = { debug: 0, info: 1, warn: 2, error: 3 }
  const LABEL = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG' }
  const FRAMES = ['⣾', '⣽', '⣻', '⢿', '⡿', '⣟', '⣯', '⣷']
  /** Print build logs at `minLevel` (default info) and above; a running timer on a terminal. */
  function defaultBuildLogger(options = {}) {
    const min = options.minLevel ?? 'info'
    let start = Date.now()
    let frame = 0
    let timer
    const tty = process.stdout.isTTY
    const elapsed = () => `${((Date.now() - start) / 1000).toFixed(1)}s`
    const tick = () => {
      if (tty) process.stdout.write(`${FRAMES[frame++ % FRAMES.length]} Building ${elapsed()}\r`)
    }
    return (log) => {
      if (log instanceof LogEntryStart) {
        start = Date.now()
        if (tty) timer = setInterval(tick, 150)
        return
      }
      if (log instanceof LogEntryEnd) {
        if (timer) clearInterval(timer)
        return
      }
      if ((ORDER[log.level] ?? 1) < ORDER[min]) return
      const ts = log.timestamp.toTimeString().slice(0, 8)
      process.stdout.write(`${tty ? '\x1b[2K' : ''}${elapsed().padEnd(5)} | ${ts} ${LABEL[log.level] ?? 'INFO '} ${log.message}\n`)
      tick()
    }
  }

  const here = __dirname
  /** Directory of the first caller outside this package (the default context directory). */
  function callerDirectory() {
    const stack = new Error().stack?.split('\n').slice(1) ?? []
    for (const line of stack) {
      const m = /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?\s*$/.exec(line)
      if (!m) continue
      const file = m[1].startsWith('file://') ? new URL(m[1]).pathname : m[1]
      if (!file.startsWith(here + path.sep)) return path.dirname(file)
    }
    return undefined
  }

  const list = (v) => (Array.isArray(v) ? v : [v]).map(String)
  const packages = (v) => (v === undefined || v === null ? undefined : list(v))
  const ready = (c) => (c instanceof ReadyCmd ? c.getCmd() : c)

  /** A template: a base (`from…`), steps, and a start/ready command; every method chains. */
  class TemplateBase {
    constructor(options = {}) {
      const ctx = options.fileContextPath ?? callerDirectory() ?? process.cwd()
      Object.defineProperty(this, '_core', { value: new TemplateCore(String(ctx), options.fileIgnorePatterns ?? []) })
    }
    skipCache() {
      this._core.skipCache()
      return this
    }
    fromDebianImage(variant = 'stable') {
      return this.fromImage(`debian:${variant}`)
    }
    fromUbuntuImage(variant = 'latest') {
      return this.fromImage(`ubuntu:${variant}`)
    }
    fromFedoraImage(variant = '44') {
      return this.fromImage(`fedora:${variant}`)
    }
    fromAlpineImage(variant = '3.24') {
      return this.fromImage(`alpine:${variant}`)
    }
    fromArchImage(variant = 'latest') {
      return this.fromImage(`archlinux:${variant}`)
    }
    fromPythonImage(version = '3') {
      return this.fromImage(`python:${version}`)
    }
    fromNodeImage(variant = 'lts') {
      return this.fromImage(`node:${variant}`)
    }
    fromBunImage(variant = 'latest') {
      return this.fromImage(`oven/bun:${variant}`)
    }
    fromBaseImage() {
      return this.fromImage('e2bdev/base')
    }
    fromImage(baseImage, credentials) {
      if (credentials && (!credentials.username || !credentials.password)) {
        throw new errors.InvalidArgumentError('Both username and password are required when providing registry credentials')
      }
      this._core.fromImage(baseImage, credentials?.username, credentials?.password)
      return this
    }
    fromTemplate(template) {
      this._core.fromTemplate(template)
      return this
    }
    fromDockerfile(dockerfileContentOrPath) {
      this._core.fromDockerfile(dockerfileContentOrPath)
      return this
    }
    fromAWSRegistry(image, credentials) {
      this._core.fromAWSRegistry(image, credentials.accessKeyId, credentials.secretAccessKey, credentials.region)
      return this
    }
    fromGCPRegistry(image, credentials) {
      this._core.fromGCPRegistry(image, credentials.serviceAccountJSON)
      return this
    }
    copy(src, dest, options = {}) {
      this._core.copy(list(src), String(dest), options.forceUpload, options.user, options.mode || undefined, options.resolveSymlinks, options.gzip)
      return this
    }
    copyItems(items) {
      for (const i of items) this.copy(i.src, i.dest, i)
      return this
    }
    remove(p, options = {}) {
      this._core.remove(list(p), !!options.force, !!options.recursive, options.user)
      return this
    }
    rename(src, dest, options = {}) {
      this._core.rename(String(src), String(dest), !!options.force, options.user)
      return this
    }
    makeDir(p, options = {}) {
      this._core.makeDir(list(p), options.mode || undefined, options.user)
      return this
    }
    makeSymlink(src, dest, options = {}) {
      this._core.makeSymlink(String(src), String(dest), options.user, !!options.force)
      return this
    }
    runCmd(commandOrCommands, options = {}) {
      this._core.runCmd(list(commandOrCommands), options.user)
      return this
    }
    setWorkdir(workdir) {
      this._core.setWorkdir(String(workdir))
      return this
    }
    setUser(user) {
      this._core.setUser(user)
      return this
    }
    pipInstall(pkgs, options = {}) {
      this._core.pipInstall(packages(pkgs), options.g ?? true)
      return this
    }
    npmInstall(pkgs, options = {}) {
      this._core.npmInstall(packages(pkgs), !!options.g, !!options.dev)
      return this
    }
    bunInstall(pkgs, options = {}) {
      this._core.bunInstall(packages(pkgs), !!options.g, !!options.dev)
      return this
    }
    aptInstall(pkgs, options = {}) {
      this._core.aptInstall(list(pkgs), !!options.noInstallRecommends, !!options.fixMissing)
      return this
    }
    addMcpServer(servers) {
      this._core.addMcpServer(list(servers))
      return this
    }
    gitClone(url, p, options = {}) {
      this._core.gitClone(url, p === undefined ? undefined : String(p), options.branch, options.depth, options.user)
      return this
    }
    setEnvs(envs) {
      this._core.setEnvs(Object.entries(envs).map(([k, v]) => [k, String(v)]))
      return this
    }
    setStartCmd(startCommand, readyCommand) {
      this._core.setStartCmd(startCommand, ready(readyCommand))
      return this
    }
    setReadyCmd(readyCommand) {
      this._core.setReadyCmd(ready(readyCommand))
      return this
    }
    betaDevContainerPrebuild(dir) {
      this._core.betaDevContainerPrebuild(dir)
      return this
    }
    betaSetDevContainerStart(dir) {
      this._core.betaSetDevContainerStart(dir)
      return this
    }
    toJSON(computeHashes = true) {
      return Promise.resolve().then(() => this._core.toJSON(computeHashes))
    }
    toDockerfile() {
      return this._core.toDockerfile()
    }

    static toJSON(template, computeHashes = true) {
      return template.toJSON(computeHashes)
    }
    static toDockerfile(template) {
      return template.toDockerfile()
    }
    static build(template, nameOrOptions, options) {
      return startBuild(template, nameOrOptions, options, true)
    }
    static buildInBackground(template, nameOrOptions, options) {
      return startBuild(template, nameOrOptions, options, false)
    }
    static async getBuildStatus(data, options = {}) {
      const { logsOffset, ...conn } = options
      const s = await templateGetBuildStatus(data.templateId, data.buildId, logsOffset, conn)
      return {
        buildID: s.buildID,
        templateID: s.templateID,
        status: s.status,
        logEntries: s.logEntries.map(entry),
        logs: s.logs,
        reason: s.reason ? { message: s.reason.message, step: s.reason.step ?? undefined, logEntries: s.reason.logEntries.map(entry) } : undefined,
      }
    }
    static exists(name, options) {
      return templateExists(name, options)
    }
    static aliasExists(alias, options) {
      return templateExists(alias, options)
    }
    static assignTags(targetName, tags, options) {
      return templateAssignTags(targetName, list(tags), options)
    }
    static removeTags(name, tags, options) {
      return templateRemoveTags(name, list(tags), options)
    }
    static async getTags(templateId, options) {
      return templateGetTags(templateId, options)
    }
  }

  function startBuild(template, nameOrOptions, options, wait) {
    let name
    let opts
    if (typeof nameOrOptions === 'string') {
      name = nameOrOptions
      opts = options ?? {}
    } else {
      const { alias, ...rest } = nameOrOptions ?? {}
      name = alias
      opts = rest
    }
    if (!name) return Promise.reject(new errors.TemplateError('Name must be provided'))
    const { tags, cpuCount, memoryMB, minFreeDiskMb, skipCache, onBuildLogs, ...conn } = opts
    const cb = onBuildLogs ? (e) => onBuildLogs(entry(e)) : undefined
    return template._core.build({ name, tags, cpuCount, memoryMB, minFreeDiskMb, skipCache, wait }, cb, conn)
  }

  /** `Template()` or `new Template()`: a new template (E2B's callable class). */
  function Template(options) {
    return new TemplateBase(options)
  }
  for (const key of Object.getOwnPropertyNames(TemplateBase)) {
    if (!['length', 'name', 'prototype'].includes(key)) Template[key] = TemplateBase[key]
  }
  Template.prototype = TemplateBase.prototype

  return {
    Template,
    TemplateBase,
    ReadyCmd,
    waitForPort,
    waitForURL,
    waitForProcess,
    waitForFile,
    waitForTimeout,
    LogEntry,
    LogEntryStart,
    LogEntryEnd,
    defaultBuildLogger,
  }
}
