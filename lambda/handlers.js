'use strict'

// The three handler shapes the Lambda Node.js runtime calls, each wrapped around an Invocation:
// async `(event, context)`, callback-style `(event, context, callback)` and response streaming
// `(event, responseStream, context)`. Each wrapper settles exactly as the handler does.

const { isStreamingHandler, copyStreamingMarks, runtimeSupportsCallbacks } = require('./runtime.js')

/** Wraps `handler` in the shape the runtime will call it in; `recording` begins each invocation. */
function wrapHandler(handler, recording) {
  if (isStreamingHandler(handler)) return streamingHandler(handler, recording)
  if (handler.length >= 3 && runtimeSupportsCallbacks()) return callbackHandler(handler, recording)
  return asyncHandler(handler, recording)
}

function asyncHandler(handler, recording) {
  return async function apiCallRecorderHandler(event, context) {
    return recording.begin(context).around(() => invoke(handler, event, context))
  }
}

/** The runtime passes a response stream to handlers it sees marked as streaming. */
function streamingHandler(handler, recording) {
  const streaming = async function apiCallRecorderHandler(event, responseStream, context) {
    return recording.begin(context).around(() => handler(event, responseStream, context))
  }
  return copyStreamingMarks(handler, streaming)
}

/**
 * A callback-style handler keeps the runtime's semantics: it responds once the event loop is empty
 * unless `context.callbackWaitsForEmptyEventLoop` is false, so the wrapper is one too. A handler
 * that returns a promise is answered by it, as the runtime does, without waiting for the loop.
 */
function callbackHandler(handler, recording) {
  return function apiCallRecorderHandler(event, context, callback) {
    const invocation = recording.begin(context)
    let answered = false
    const answer = (args) => {
      if (answered) return
      answered = true
      invocation.answer(callback, args)
    }
    const settle = async () => {
      if (answered) return
      answered = true
      await invocation.end()
    }
    let returned
    try {
      returned = invocation.run(() => handler(event, context, (...args) => answer(args)))
    } catch (error) {
      answer([error])
      return undefined
    }
    if (returned && typeof returned.then === 'function') {
      return Promise.resolve(returned).then(async (value) => {
        await settle()
        return value
      }, async (error) => {
        await settle()
        throw error
      })
    }
    return undefined
  }
}

/**
 * Calls an async handler, or a callback-style one where the runtime gives no callback semantics
 * (the caller awaits the result); settles with its outcome.
 */
function invoke(handler, event, context) {
  if (handler.length < 3) return handler(event, context)
  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (fn, value) => {
      if (!settled) {
        settled = true
        fn(value)
      }
    }
    const callback = (error, result) => {
      if (error !== null && error !== undefined) settle(reject, error)
      else settle(resolve, result)
    }
    try {
      const returned = handler(event, context, callback)
      if (returned && typeof returned.then === 'function') {
        returned.then((value) => settle(resolve, value), (error) => settle(reject, error))
      }
    } catch (error) {
      settle(reject, error)
    }
  })
}

module.exports = { wrapHandler }
