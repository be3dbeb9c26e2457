// Loads the function's own handler from its handler setting (`dir/module.export.path`, relative to
// the task root) the way Lambda's Node.js runtime does, in its two generations:
// - 3.x (nodejs22.x): the module path tried as it is, then `.js` (an ES module where the nearest
//   package.json says "type": "module", else required), `.mjs`, `.cjs`, then Node's resolution from
//   the task root and the module's folder; the export found by its dotted path;
// - 4.x (nodejs24.x, `importEverything`): the same files, each one imported, CommonJS too; the dotted
//   path followed through objects only, in the module and then in its default export.
//
// Errors are the ones the runtime would report for the function itself: a syntax error or a
// missing module is thrown as it is (the runtime wraps it as it would the function's), a missing or
// non-function export is `Runtime.HandlerNotFound`, a bad setting `Runtime.MalformedHandlerName`,
// with the runtime's messages.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

/** An error as the runtime names it (`errorType` in the init error is the error's name). */
function runtimeError(name, message) {
  const error = new Error(message)
  error.name = `Runtime.${name}`
  return error
}

/** `[folder part, module part, export path]` of a handler setting. */
function parseSetting(setting) {
  if (typeof setting !== 'string' || setting === '') throw runtimeError('MalformedHandlerName', 'Bad handler')
  if (setting.includes('..')) {
    throw runtimeError('MalformedHandlerName',
      `'${setting}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`)
  }
  const base = path.basename(setting)
  const folder = setting.slice(0, setting.indexOf(base))
  const dot = base.indexOf('.')
  if (dot <= 0 || dot === base.length - 1) throw runtimeError('MalformedHandlerName', 'Bad handler')
  return [folder, base.slice(0, dot), base.slice(dot + 1)]
}

/** Whether the package.json nearest to `folder` (not looking past node_modules) says "type": "module". */
function inModulePackage(folder) {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    if (dir.endsWith(`${path.sep}node_modules`)) return false
    const manifest = path.join(dir, 'package.json')
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8'))?.type === 'module'
      } catch {
        return false
      }
    }
    if (dir === path.dirname(dir)) return false
  }
}

async function loadModule(taskRoot, folder, name, { importEverything }) {
  // The runtime's own require, so that a module it cannot find is reported with its require stack.
  const require = createRequire(process.argv[1] ?? path.join(taskRoot, 'index.js'))
  const load = async (file, asModule) => {
    if (!fs.existsSync(file)) return undefined
    return asModule || importEverything ? import(pathToFileURL(file).href) : require(file)
  }
  const base = path.resolve(taskRoot, folder, name)
  const typeModule = !importEverything && fs.existsSync(`${base}.js`) && inModulePackage(path.dirname(base))
  return (await load(base, false)) ??
    (await load(`${base}.js`, typeModule)) ??
    (await load(`${base}.mjs`, true)) ??
    (await load(`${base}.cjs`, false)) ??
    require(require.resolve(name, { paths: [taskRoot, path.resolve(taskRoot, folder)] }))
}

/** The value at a dotted path: 3.x follows any value, 4.x objects only. */
function follow(root, exportPath, importEverything) {
  return exportPath.split('.').reduce((value, key) =>
    (importEverything ? (value && typeof value === 'object' ? value[key] : undefined) : value && value[key]), root)
}

/**
 * The function's handler for `setting` in `taskRoot`. `importEverything`: load it as the 4.x
 * runtime client does.
 */
export async function loadFunctionHandler(taskRoot, setting, { importEverything = false } = {}) {
  const [folder, name, exportPath] = parseSetting(setting)
  const loaded = await loadModule(taskRoot, folder, name, { importEverything })
  let handler = follow(loaded, exportPath, importEverything)
  // An imported CommonJS module is a namespace whose default export is its module.exports.
  if (!handler && importEverything && loaded !== null && typeof loaded === 'object' && 'default' in loaded) {
    handler = follow(loaded.default, exportPath, true)
  }
  if (!handler) throw runtimeError('HandlerNotFound', `${setting} is undefined or not exported`)
  if (typeof handler !== 'function') throw runtimeError('HandlerNotFound', `${setting} is not a function`)
  return handler
}
