'use strict'

// Automatic instrumentation: wraps `Client.prototype.send` of every copy of the class all v3 clients
// extend: `Client` from `@smithy/core/client` (current SDKs) or `@smithy/smithy-client` /
// `@aws-sdk/smithy-client` (older ones). Copies already loaded are found in `require.cache`; later ones
// through a `Module._load` hook. The wrapped `send` adds the plugin to a client's middleware stack on its
// first call, so clients created before activation are covered too. Limits:
// - An SDK bundled into the application file (esbuild, webpack) never loads those modules by name, so
//   nothing is patched: add `recorderPlugin()` to those clients. Marking `@aws-sdk/*` and `@smithy/*`
//   external (the Lambda runtime ships them) keeps automatic instrumentation working.
// - Only `require` loads are seen. Current SDKs resolve `@smithy/core/client` to CommonJS under Node
//   even from ESM imports; an ESM-only copy would not be patched.
// - A client class that overrides `send` without calling the base `send` is not instrumented.
// - `stop()` cannot take the middleware out of stacks it was added to; it turns it into a pass-through.

const { counters, instrumentation } = require('./state.js')
const { Plugin, CALL_MIDDLEWARE } = require('./plugin.js')
const { recordHttpLayer, stopHttpLayer } = require('./http.js')

/** Set on a patched `Client.prototype` (to the original `send`), so no copy is patched twice. */
const ORIGINAL_SEND = Symbol.for('aws-api-call-recorder.sdk-v3.original-send')

/** `require` ids under which the v3 SDK loads the class every client extends. */
const SMITHY_CLIENT_REQUESTS = new Set(['@smithy/core/client', '@smithy/smithy-client', '@aws-sdk/smithy-client'])
/** The same modules in require.cache, for copies loaded before instrumentation began. */
const SMITHY_CLIENT_FILE =
  /[\\/]@(?:smithy|aws-sdk)[\\/](?:smithy-client[\\/]|core[\\/]dist-cjs[\\/]submodules[\\/]client[\\/])/
const instrumentedStacks = new WeakSet()
let loadHooked = false

function isSmithyClientModule(exports) {
  return (
    exports !== null &&
    typeof exports === 'object' &&
    typeof exports.Client === 'function' &&
    typeof exports.Command === 'function' &&
    typeof exports.Client.prototype?.send === 'function'
  )
}

/** Wraps `Client.prototype.send` of one loaded copy so each client gets the plugin on first use. */
function patchClientClass(Client) {
  const proto = Client.prototype
  if (Object.prototype.hasOwnProperty.call(proto, ORIGINAL_SEND)) return false
  const original = proto.send
  Object.defineProperty(proto, ORIGINAL_SEND, { value: original })
  proto.send = function send(command, optionsOrCb, cb) {
    if (instrumentation.current !== null) {
      try {
        instrumentClient(this)
      } catch {
        counters.failures++
      }
    }
    return original.apply(this, arguments)
  }
  return true
}

/** Adds the plugin to a client once, unless the client already has it (explicitly or via a shared stack). */
function instrumentClient(client) {
  const stack = client.middlewareStack
  if (!stack || typeof stack.use !== 'function' || instrumentedStacks.has(stack)) return
  instrumentedStacks.add(stack)
  if (typeof stack.identify === 'function' && stack.identify().some((name) => name.startsWith(CALL_MIDDLEWARE))) {
    return
  }
  const serviceId = client.config?.serviceId
  stack.use(new Plugin(typeof serviceId === 'string' ? { serviceId } : {}, true))
  // With `cacheMiddleware: true` a client keeps handlers built from the old stack; drop them as the
  // SDK itself does when a send has options.
  if (client.handlers !== undefined) delete client.handlers
}

function patchLoadedCopies() {
  let patched = 0
  const Module = require('node:module')
  for (const [file, cached] of Object.entries(Module._cache)) {
    if (!SMITHY_CLIENT_FILE.test(file)) continue
    try {
      if (isSmithyClientModule(cached?.exports) && patchClientClass(cached.exports.Client)) patched++
    } catch {
      counters.failures++
    }
  }
  return patched
}

function hookModuleLoad() {
  if (loadHooked) return
  loadHooked = true
  const Module = require('node:module')
  const originalLoad = Module._load
  Module._load = function _load(request, parent, isMain) {
    const exports = originalLoad.apply(this, arguments)
    if (SMITHY_CLIENT_REQUESTS.has(request)) {
      try {
        if (isSmithyClientModule(exports)) patchClientClass(exports.Client)
      } catch {
        counters.failures++
      }
    }
    return exports
  }
}

/**
 * Records every v3 client in the process from now on: patches `Client.prototype.send` of each
 * loaded copy of the SDK's client class and of copies loaded later. With `http: true`, calls of
 * copies that cannot be patched (bundled SDKs) are recorded from Node's HTTP client as well (see
 * http.js). Events go to `recorder`, or, without one, as CSM datagrams when AWS_CSM_ENABLED is on.
 * A later call replaces the target (and the `http` choice).
 */
function instrumentSdkV3(options = {}) {
  const state = { recorder: options?.recorder ?? null }
  instrumentation.current = state
  hookModuleLoad()
  const patched = patchLoadedCopies()
  if (options?.http === true) recordHttpLayer()
  else stopHttpLayer()
  return {
    /** Copies of the client class patched by this call (0 when none was loaded yet, or all were). */
    patched,
    /** Stops recording through the automatic instrumentation; the middlewares stay, inert. */
    stop() {
      if (instrumentation.current === state) {
        instrumentation.current = null
        stopHttpLayer()
      }
    },
  }
}

module.exports = { instrumentSdkV3 }
