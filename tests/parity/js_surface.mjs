// Print the public surface of a TypeScript declaration file (the official `e2b` package's
// dist/index.d.mts, or our bindings-node/index.d.ts) as JSON, using the TypeScript compiler API
// so merged declarations, re-exports and module augmentations resolve as `tsc` sees them.
//
// Usage: node js_surface.mjs <typescript module dir> <entry .d.ts/.d.mts>
//
// Recorded: exported names; for the sandbox classes, every static and instance member and, for
// methods, each overload's parameters (optional flag, and the property names of object-typed
// parameters: an options bag is part of the signature a caller relies on); error classes'
// base-class chains.
import { createRequire } from 'node:module'
import path from 'node:path'

const [tsDir, entry] = process.argv.slice(2)
const ts = createRequire(path.join(path.resolve(tsDir), 'x.js'))('typescript')

const CLASSES = ['Sandbox', 'Commands', 'Filesystem', 'Pty', 'CommandHandle', 'WatchHandle', 'SandboxInfo', 'EntryInfo', 'ProcessInfo', 'CommandResult', 'FilesystemEvent', 'SnapshotInfo', 'Git', 'GitStatus', 'GitBranches', 'GitFileStatus', 'TemplateBase', 'LogEntry', 'ReadyCmd']

const program = ts.createProgram([entry], {
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: [],
})
const checker = program.getTypeChecker()
const source = program.getSourceFile(entry)
if (!source) throw new Error(`cannot load ${entry}`)
const moduleSymbol = checker.getSymbolAtLocation(source)
const exportsList = checker.getExportsOfModule(moduleSymbol)

const resolve = (sym) => (sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym)

function objectProps(type) {
  const props = new Set()
  const visit = (t) => {
    t = checker.getNonNullableType(t)
    if (t.isUnion()) return t.types.forEach(visit)
    if (t.flags & (ts.TypeFlags.Primitive | ts.TypeFlags.Literal)) return
    if (t.getCallSignatures().length) return
    const sym = t.getSymbol()
    // Built-ins (Uint8Array, Blob, streams, ...) are data, not options bags.
    if (sym && sym.declarations?.some((d) => d.getSourceFile().hasNoDefaultLib || /node_modules[\\/](typescript|@types)/.test(d.getSourceFile().fileName))) return
    for (const p of checker.getPropertiesOfType(t)) props.add(p.getName())
  }
  visit(type)
  return [...props].sort()
}

function signatures(type, decl) {
  return type.getCallSignatures().map((sig) =>
    sig.getParameters().map((p) => {
      const d = p.valueDeclaration
      const t = checker.getTypeOfSymbolAtLocation(p, d ?? decl)
      return {
        name: p.getName(),
        optional: !!(d && (d.questionToken || d.initializer || d.dotDotDotToken)),
        rest: !!(d && d.dotDotDotToken),
        props: objectProps(t),
      }
    }),
  )
}

function members(type, decl) {
  const out = {}
  for (const m of checker.getPropertiesOfType(type)) {
    const name = m.getName()
    if (name === 'prototype' || name.startsWith('_') || name.startsWith('#') || name.startsWith('__@')) continue
    const d = m.valueDeclaration ?? m.declarations?.[0]
    if (d && ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue
    const t = checker.getTypeOfSymbolAtLocation(m, d ?? decl)
    const isMethod = m.flags & ts.SymbolFlags.Method
    out[name] = isMethod ? { kind: 'method', signatures: signatures(t, d ?? decl) } : { kind: 'property' }
  }
  return out
}

const exported = {}
for (const sym of exportsList) exported[sym.getName()] = resolve(sym)

const classes = {}
for (const label of CLASSES) {
  const sym = exported[label]
  if (!sym) {
    classes[label] = null
    continue
  }
  const decl = sym.declarations[0]
  const entry = { instance: members(checker.getDeclaredTypeOfSymbol(sym), decl) }
  if (sym.flags & ts.SymbolFlags.Class) entry.static = members(checker.getTypeOfSymbolAtLocation(sym, decl), decl)
  classes[label] = entry
}

const errors = {}
for (const [name, sym] of Object.entries(exported)) {
  if (!(sym.flags & ts.SymbolFlags.Class) || !name.endsWith('Error')) continue
  const chain = []
  let t = checker.getDeclaredTypeOfSymbol(sym)
  for (;;) {
    const bases = t.getBaseTypes?.() ?? []
    if (!bases.length) break
    t = bases[0]
    chain.push(t.getSymbol()?.getName())
  }
  errors[name] = chain
}

const defaultExport = exported.default ? exported.default.getName() : null
process.stdout.write(JSON.stringify({ exports: Object.keys(exported).sort(), default: defaultExport, classes, errors }, null, 1))
