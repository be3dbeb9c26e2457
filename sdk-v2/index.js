'use strict'

// aws-sdk v2 (JavaScript) in this process: every copy of the SDK, loaded now or later, gets the
// resource listeners (./resources.js) and, with a recorder, the call listeners (./calls.js), in that
// order, so each call's event carries its resources when it is recorded.

const { recordSdkV2Resources } = require('./resources.js')
const { recordSdkV2Calls } = require('./calls.js')

const CORE_FILE = /[\\/]aws-sdk[\\/]lib[\\/]core\.js$/
/**
 * A load that may bring aws-sdk v2 in: `aws-sdk` or `aws-sdk/...` from `require`, or the absolute
 * path of one of its files when an ES module imports it (not `@aws-sdk/...`, the v3 packages).
 */
const SDK_REQUEST = /(^|[\\/])aws-sdk([\\/]|$)/

function isAwsNamespace(AWS) {
  return (
    AWS !== null &&
    typeof AWS === 'object' &&
    typeof AWS.events?.on === 'function' &&
    typeof AWS.Service?.prototype?.on === 'function'
  )
}

const wanted = { resources: false, target: null }
let loadHooked = false

function instrumentCopy(AWS) {
  if (!isAwsNamespace(AWS)) return false
  let changed = false
  if (wanted.resources) changed = recordSdkV2Resources(AWS) || changed
  if (wanted.target) changed = recordSdkV2Calls(AWS, wanted.target) || changed
  return changed
}

/**
 * Instruments every copy of aws-sdk v2 loaded now (found in require.cache) and copies loaded later:
 * `resources` adds what each call named, `target` (a Recorder) records the calls. Returns how many
 * copies were changed now.
 */
function instrumentSdkV2({ resources = wanted.resources, target = wanted.target } = {}) {
  wanted.resources = resources
  wanted.target = target
  const Module = require('node:module')
  const hookLoaded = () => {
    let changed = 0
    for (const [file, cached] of Object.entries(Module._cache)) {
      if (CORE_FILE.test(file) && instrumentCopy(cached?.exports)) changed++
    }
    return changed
  }
  if (!loadHooked) {
    loadHooked = true
    const originalLoad = Module._load
    Module._load = function _load(request) {
      const exports = originalLoad.apply(this, arguments)
      if (typeof request === 'string' && SDK_REQUEST.test(request)) {
        try {
          hookLoaded()
        } catch {
          // not recorded in process
        }
      }
      return exports
    }
  }
  return hookLoaded()
}

module.exports = { instrumentSdkV2, isAwsNamespace }
