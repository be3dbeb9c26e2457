// Runs a function as Lambda does: the real Node.js runtime interface client (npm aws-lambda-ric)
// in a child process, against a stand-in of the Runtime API (2018-06-01) and the Extensions API
// (2020-01-01) served here on loopback.
//
// Lambda's life cycle, as far as a function can tell:
// - init: the runtime loads the handler; extensions may register only until the runtime first asks
//   for an invocation. Init ends when the runtime and every registered extension wait for an event.
// - invoke: the event goes to the runtime and an INVOKE event to each extension. The invocation ends
//   when the runtime has responded and the runtime and every extension wait for the next event; then
//   the process is frozen (SIGSTOP) until the next invocation (SIGCONT). Work left unfinished at the
//   freeze does not happen during it.
// - a function that has not finished by its deadline times out: the process is killed, and the next
//   invocation starts a new environment.
// - shutdown: SHUTDOWN to extensions registered for it, SIGTERM to the runtime, SIGKILL after the budget.
// With `managedInstances` it serves as Lambda Managed Instances do: the runtime's worker threads each
// keep requests for the next invocation pending, up to `maxConcurrency` invocations run at once, the
// environment is never frozen, init ends once every worker asks for an invocation, and extensions
// may register for SHUTDOWN only (INVOKE is refused).
import { execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const requireFromRepo = createRequire(path.join(repoRoot, 'package.json'))

/** Lambda's shutdown budget when only internal extensions are registered. */
export const SHUTDOWN_BUDGET_MS = 500
const INIT_TIMEOUT_MS = 30_000

/**
 * The runtime interface client's entry point, or an error saying why it cannot run here: the client
 * is a dev dependency with a native part compiled at install time.
 */
export function runtimeClient(generation = 3, nodeMajor = Number(process.versions.node.split('.')[0])) {
  // 3.x is nodejs22.x's generation, 4.x (a dev dependency under an alias) nodejs24.x's.
  const name = generation >= 4 ? 'aws-lambda-ric-4' : 'aws-lambda-ric'
  let manifestPath
  try {
    manifestPath = requireFromRepo.resolve(`${name}/package.json`)
  } catch {
    return { error: `the Lambda runtime interface client (npm ${name}) is not installed: run npm install in the repository` }
  }
  const root = path.dirname(manifestPath)
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.['aws-lambda-ric']
  if (Number(manifest.version.split('.')[0]) >= 4 && nodeMajor < 22) {
    return { error: `aws-lambda-ric ${manifest.version} needs Node.js 22 or later, this is Node.js ${nodeMajor}` }
  }
  const native = [path.join(root, 'dist', 'rapid-client.node'), path.join(root, 'build', 'Release', 'rapid-client.node')]
  if (Number(manifest.version.split('.')[0]) < 4 && !native.some((file) => fs.existsSync(file))) {
    return {
      error: `aws-lambda-ric ${manifest.version} is installed but its native client is not built: its install ` +
        'script compiles it (allowed in package.json "allowScripts"; needs cmake, autoconf, automake, libtool, ' +
        'make and g++), or run "npm rebuild aws-lambda-ric"',
    }
  }
  // 3.x: a module whose run() takes the task root and handler; 4.x: its command reads both from the
  // environment, as Lambda's bootstrap does.
  const module = path.join(root, 'dist', 'index.mjs')
  return { bin: path.join(root, bin), module, version: manifest.version, generation: Number(manifest.version.split('.')[0]) }
}

/** The runtime interface client, or a thrown error that says why it cannot run. */
function requireRuntimeClient(generation, nodeMajor) {
  const client = runtimeClient(generation, nodeMajor)
  if (client.error) throw new Error(`cannot run functions as Lambda does: ${client.error}`)
  return client
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })
}

function reply(response, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body)
  response.writeHead(status, { 'Content-Type': 'application/json', ...headers })
  response.end(text)
}

/** Starts the runtime client as Lambda's Node.js bootstrap does: the handler setting and the task root from the environment. */
const BOOTSTRAP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lambda-bootstrap.mjs')

/**
 * Whether functions can be laid out as Lambda does, with the layer at /opt and the code at
 * /var/task, in a private mount namespace: needs root and util-linux's `unshare` (the machine's own
 * /opt and /var are never touched). `null` when it can, else why not.
 */
export function lambdaLayoutUnavailable() {
  if (process.getuid?.() !== 0) return 'laying a function out under /opt and /var/task needs root (a private mount namespace)'
  try {
    execFileSync('unshare', ['-m', '--', 'true'], { stdio: 'ignore' })
  } catch (error) {
    return `unshare -m does not work here: ${error.message}`
  }
  return null
}

/**
 * The command that runs `command` in a private mount namespace where `layout.opt` is mounted on /opt
 * and `layout.task` on /var/task (a fresh tmpfs on /var holds the mount point), from /var/task.
 */
function inLambdaLayout(layout, command) {
  const script = 'mount --bind "$0" /opt && mount -t tmpfs tmpfs /var && mkdir /var/task && ' +
    'mount --bind "$1" /var/task && cd /var/task && shift && exec "$@"'
  return ['unshare', '-m', '--', 'sh', '-c', script, layout.opt, layout.task, ...command]
}

/**
 * Starts the Runtime and Extensions API stand-in for one function. `taskRoot` holds the handler
 * file; `handler` is Lambda's handler setting (`file.export`). `env` is added to the function's
 * environment. `nodePath` runs the runtime under another Node.js binary. `execWrapper` starts the
 * runtime through that program, as `AWS_LAMBDA_EXEC_WRAPPER` does (`wrapper node bootstrap`), and
 * `bootstrap` starts it as Lambda's bootstrap does (always, with a wrapper) instead of through the
 * client's command. `layout: { opt, task }` mounts those folders on /opt and /var/task for the
 * function (see `lambdaLayoutUnavailable`); `taskRoot` and `execWrapper` are then paths inside.
 */
export async function startLambda({
  taskRoot,
  handler,
  env = {},
  timeoutMs = 3000,
  functionName = 'recorder-test',
  nodePath = process.env.LAMBDA_NODE ?? process.execPath,
  shutdownBudgetMs = SHUTDOWN_BUDGET_MS,
  execWrapper = null,
  bootstrap = execWrapper !== null,
  runtimeGeneration = 3,
  layout = null,
  // The major version of `nodePath`'s Node.js, when it is another binary than this one's.
  nodeMajor = Number(process.versions.node.split('.')[0]),
  // `{ maxConcurrency, workers }`: served as Lambda Managed Instances (runtime client 4.x only).
  managedInstances = null,
}) {
  const client = requireRuntimeClient(runtimeGeneration, nodeMajor)
  const server = http.createServer()
  // Long polls and frozen clients: never close an idle connection under the runtime.
  server.keepAliveTimeout = 0
  server.requestTimeout = 0
  server.headersTimeout = 0
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const api = `127.0.0.1:${server.address().port}`
  const functionArn = `arn:aws:lambda:us-west-2:123456789012:function:${functionName}`

  let environment = null
  const history = { environments: 0, refusedRegistrations: [], initErrors: [] }

  function newEnvironment() {
    const state = {
      child: null,
      output: '',
      exited: null,
      frozen: false,
      initDone: false,
      runtimeAskedOnce: false,
      runtimeWaiting: null, // the pending /next response of the runtime
      nextPending: [], // managed instances: every pending /next response of the workers
      nextWanted: [], // managed instances: invocations waiting for a pending /next
      running: new Map(), // managed instances: requestId -> invocation
      slots: [], // managed instances: invocations waiting for one of the maxConcurrency slots
      extensions: new Map(), // id -> { name, events, waiting: pending response or null }
      invocation: null,
    }
    history.environments++
    const childEnv = {
      PATH: process.env.PATH,
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      AWS_LAMBDA_RUNTIME_API: api,
      _HANDLER: handler,
      LAMBDA_TASK_ROOT: taskRoot,
      LAMBDA_RUNTIME_DIR: path.dirname(client.bin),
      AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${nodeMajor}.x`,
      AWS_LAMBDA_FUNCTION_NAME: functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/11/25/[$LATEST]00000000000000000000000000000000',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_REGION: 'us-west-2',
      AWS_DEFAULT_REGION: 'us-west-2',
      ...(managedInstances ? {
        AWS_LAMBDA_INITIALIZATION_TYPE: 'lambda-managed-instances',
        AWS_LAMBDA_MAX_CONCURRENCY: String(managedInstances.maxConcurrency),
        AWS_LAMBDA_NODEJS_WORKER_COUNT: String(managedInstances.workers),
      } : {}),
      ...env,
    }
    // 3.x through the bootstrap, with the client's own file as the main module, as in Lambda (where
    // the bootstrap runs /var/runtime/index.mjs, the client itself): what names the main module,
    // such as a require stack, names the client.
    const runtime = client.generation >= 4 ? [nodePath, client.bin]
      : bootstrap ? [nodePath, '--import', pathToFileURL(BOOTSTRAP).href, client.module] : [nodePath, client.bin, handler]
    if (bootstrap) childEnv.LAMBDA_RUNTIME_CLIENT = client.module
    if (execWrapper) childEnv.AWS_LAMBDA_EXEC_WRAPPER = execWrapper
    const wrapped = execWrapper ? [execWrapper, ...runtime] : runtime
    const [command, ...args] = layout ? inLambdaLayout(layout, wrapped) : wrapped
    state.child = spawn(command, args, { cwd: layout ? '/' : taskRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (chunk) => { state.output = (state.output + chunk).slice(-200_000) }
    state.child.stdout.on('data', keep)
    state.child.stderr.on('data', keep)
    state.exitedPromise = new Promise((resolve) => state.child.once('exit', (code, signal) => {
      state.exited = { code, signal }
      resolve(state.exited)
    }))
    state.ready = new Promise((resolve, reject) => {
      state.onInitDone = resolve
      state.onInitFailed = reject
    })
    return state
  }

  function allWaiting(state) {
    if (managedInstances) {
      if (state.nextPending.length < managedInstances.workers) return false
    } else if (!state.runtimeWaiting) return false
    for (const extension of state.extensions.values()) if (!extension.waiting) return false
    return true
  }

  function freeze(state) {
    if (managedInstances) return
    if (!state.frozen && state.exited === null) {
      state.child.kill('SIGSTOP')
      state.frozen = true
    }
  }

  function thaw(state) {
    if (state.frozen && state.exited === null) {
      state.child.kill('SIGCONT')
      state.frozen = false
    }
  }

  /** Called whenever someone starts waiting or a response arrives: freezes when everyone is done. */
  function checkQuiescent(state) {
    if (!allWaiting(state)) return
    if (!state.initDone) {
      state.initDone = true
      freeze(state)
      state.onInitDone()
      return
    }
    const invocation = state.invocation
    if (invocation && invocation.outcome && !invocation.done) {
      invocation.heldMs = performance.now() - invocation.startedAt
      invocation.done = true
      freeze(state)
      invocation.finish()
    }
  }

  server.on('request', async (request, response) => {
    const state = environment
    const url = new URL(request.url, 'http://runtime')
    const route = `${request.method} ${url.pathname}`
    try {
      if (!state) return reply(response, 500, { errorMessage: 'no environment' })
      if (route === 'GET /2018-06-01/runtime/invocation/next' && managedInstances) {
        request.socket.setTimeout(0)
        const wanted = state.nextWanted.shift()
        if (wanted) wanted(response)
        else state.nextPending.push(response)
        checkQuiescent(state)
        return
      }
      if (route === 'GET /2018-06-01/runtime/invocation/next') {
        state.runtimeAskedOnce = true
        state.runtimeWaiting = response
        request.socket.setTimeout(0)
        checkQuiescent(state)
        return
      }
      let match = /^POST \/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(route)
      if (match) {
        const body = await readBody(request)
        const id = decodeURIComponent(match[1])
        const invocation = managedInstances ? state.running.get(id) : state.invocation
        if (!invocation || invocation.requestId !== id || invocation.outcome) {
          return reply(response, 400, { errorMessage: `no invocation ${id} awaiting a response`, errorType: 'InvalidRequestID' })
        }
        invocation.respondedAt = performance.now()
        invocation.responseMs = invocation.respondedAt - invocation.startedAt
        const text = body.toString('utf8')
        const streamed = request.headers['lambda-runtime-function-response-mode'] === 'streaming'
        const trailerError = request.trailers?.['lambda-runtime-function-error-type']
        if (match[2] === 'error' || trailerError) {
          invocation.outcome = {
            error: match[2] === 'error' ? JSON.parse(text || 'null') : {
              errorType: trailerError,
              errorMessage: Buffer.from(request.trailers['lambda-runtime-function-error-body'] ?? '', 'base64').toString('utf8'),
            },
            streamed,
          }
        } else {
          invocation.outcome = streamed ? { streamed, body: text } : { result: JSON.parse(text || 'null'), body: text }
        }
        reply(response, 202, { status: 'OK' })
        if (managedInstances) invocation.finish()
        else checkQuiescent(state)
        return
      }
      if (route === 'POST /2018-06-01/runtime/init/error') {
        const body = await readBody(request)
        history.initErrors.push(JSON.parse(body.toString('utf8') || 'null'))
        reply(response, 202, { status: 'OK' })
        state.onInitFailed(new Error(`init error: ${body}\n${state.output}`))
        return
      }
      if (route === 'POST /2020-01-01/extension/register') {
        const body = JSON.parse((await readBody(request)).toString('utf8') || '{}')
        const name = request.headers['lambda-extension-name']
        if (managedInstances ? state.initDone : state.runtimeAskedOnce) {
          history.refusedRegistrations.push(name)
          return reply(response, 403, {
            errorMessage: 'Extensions can only register during the init phase',
            errorType: 'Extension.InvalidRegistrationPhase',
          })
        }
        if (!name || !Array.isArray(body.events)) {
          return reply(response, 400, { errorMessage: 'Lambda-Extension-Name and events are required', errorType: 'InvalidRequest' })
        }
        if (managedInstances && body.events.includes('INVOKE')) {
          history.refusedRegistrations.push(name)
          return reply(response, 403, {
            errorMessage: 'INVOKE is not supported on Lambda Managed Instances',
            errorType: 'Extension.InvalidEventType',
          })
        }
        if (!managedInstances && body.events.includes('SHUTDOWN')) {
          // Lambda does not send SHUTDOWN to an extension running in the runtime process.
          return reply(response, 400, { errorMessage: 'internal extensions cannot register for SHUTDOWN', errorType: 'Extension.InvalidEvent' })
        }
        const id = randomUUID()
        state.extensions.set(id, { name, events: body.events, waiting: null, invokes: 0 })
        return reply(response, 200, { functionName, functionVersion: '$LATEST', handler }, { 'Lambda-Extension-Identifier': id })
      }
      if (route === 'GET /2020-01-01/extension/event/next') {
        const extension = state.extensions.get(request.headers['lambda-extension-identifier'])
        if (!extension) return reply(response, 403, { errorMessage: 'unknown extension', errorType: 'Extension.UnknownExtensionIdentifier' })
        extension.waiting = response
        checkQuiescent(state)
        return
      }
      reply(response, 404, { errorMessage: `no route ${route}` })
    } catch (error) {
      reply(response, 500, { errorMessage: String(error) })
    }
  })

  async function ensureEnvironment() {
    if (environment && environment.exited === null) return environment
    environment = newEnvironment()
    const state = environment
    let timer
    const exited = state.exitedPromise.then(({ code, signal }) => {
      throw new Error(`the runtime exited during init (code ${code}, signal ${signal}):\n${state.output}`)
    })
    const timedOut = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`init did not finish within ${INIT_TIMEOUT_MS} ms:\n${state.output}`)), INIT_TIMEOUT_MS)
    })
    try {
      await Promise.race([state.ready, exited, timedOut])
    } finally {
      clearTimeout(timer)
    }
    return state
  }

  /**
   * Runs one invocation and resolves once the environment is frozen again (or the function timed
   * out): `{ requestId, result | error, responseMs, heldMs, timedOut }`.
   */
  async function invoke(event = {}, { requestId = randomUUID() } = {}) {
    const state = await ensureEnvironment()
    const deadlineMs = Date.now() + timeoutMs
    const invocation = { requestId, deadlineMs, outcome: null, done: false }
    const finished = new Promise((resolve) => { invocation.finish = resolve })
    state.invocation = invocation
    thaw(state)
    invocation.startedAt = performance.now()
    const runtime = state.runtimeWaiting
    state.runtimeWaiting = null
    runtime.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': requestId,
      'Lambda-Runtime-Deadline-Ms': String(deadlineMs),
      'Lambda-Runtime-Invoked-Function-Arn': functionArn,
      'Lambda-Runtime-Trace-Id': `Root=1-${Date.now().toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Sampled=0`,
    })
    runtime.end(JSON.stringify(event))
    for (const extension of state.extensions.values()) {
      const waiting = extension.waiting
      extension.waiting = null
      extension.invokes++
      reply(waiting, 200, {
        eventType: 'INVOKE',
        deadlineMs,
        requestId,
        invokedFunctionArn: functionArn,
        tracing: { type: 'X-Amzn-Trace-Id', value: 'Root=1-00000000-000000000000000000000000;Sampled=0' },
      })
    }
    let timer
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadlineMs - Date.now()), 'timeout')
    })
    const exited = state.exitedPromise.then(() => 'exited')
    const how = await Promise.race([finished.then(() => 'finished'), timedOut, exited])
    clearTimeout(timer)
    const outcome = {
      requestId,
      responseMs: invocation.responseMs,
      heldMs: invocation.heldMs,
      timedOut: how === 'timeout',
      ...(invocation.outcome ?? {}),
    }
    if (how === 'timeout') {
      // Lambda resets the environment of a function that timed out; the next invocation inits anew.
      thaw(state)
      state.child.kill('SIGKILL')
      await state.exitedPromise
    } else if (how === 'exited') {
      outcome.exited = state.exited
    }
    state.invocation = null
    return outcome
  }

  /**
   * Managed instances: runs one invocation once one of the `maxConcurrency` slots is free and a
   * worker waits for it; resolves when the runtime has responded: `{ requestId, result | error,
   * responseMs, waitedMs }`. Call it many times at once.
   */
  async function invokeConcurrently(event = {}, { requestId = randomUUID() } = {}) {
    const state = await ensureEnvironment()
    const queuedAt = performance.now()
    if (state.running.size >= managedInstances.maxConcurrency) {
      await new Promise((resolve) => state.slots.push(resolve))
    }
    const deadlineMs = Date.now() + timeoutMs
    const invocation = { requestId, deadlineMs, outcome: null }
    const finished = new Promise((resolve) => { invocation.finish = resolve })
    state.running.set(requestId, invocation)
    const runtime = state.nextPending.shift() ?? await new Promise((resolve) => state.nextWanted.push(resolve))
    invocation.startedAt = performance.now()
    runtime.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': requestId,
      'Lambda-Runtime-Deadline-Ms': String(deadlineMs),
      'Lambda-Runtime-Invoked-Function-Arn': functionArn,
    })
    runtime.end(JSON.stringify(event))
    let timer
    const timedOut = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'timeout') })
    const how = await Promise.race([finished.then(() => 'finished'), timedOut, state.exitedPromise.then(() => 'exited')])
    clearTimeout(timer)
    state.running.delete(requestId)
    state.slots.shift()?.()
    return {
      requestId,
      responseMs: invocation.responseMs,
      waitedMs: invocation.startedAt - queuedAt,
      timedOut: how === 'timeout',
      ...(how === 'exited' ? { exited: state.exited } : {}),
      ...(invocation.outcome ?? {}),
    }
  }

  /** Starts the environment (init) without invoking, as a provisioned or pre-warmed one is. */
  async function init() {
    await ensureEnvironment()
  }

  /**
   * Shuts the environment down as Lambda does: thaw, SHUTDOWN to extensions registered for it,
   * SIGTERM to the runtime, SIGKILL after the budget. Returns how the runtime ended.
   */
  async function shutdown() {
    const state = environment
    let ended = null
    if (state && state.exited === null) {
      thaw(state)
      for (const extension of state.extensions.values()) {
        if (extension.waiting && extension.events.includes('SHUTDOWN')) {
          reply(extension.waiting, 200, { eventType: 'SHUTDOWN', shutdownReason: 'spindown', deadlineMs: Date.now() + shutdownBudgetMs })
          extension.waiting = null
        }
      }
      const started = performance.now()
      state.child.kill('SIGTERM')
      let timer
      const budget = new Promise((resolve) => { timer = setTimeout(resolve, shutdownBudgetMs, 'budget') })
      const how = await Promise.race([state.exitedPromise.then(() => 'exited'), budget])
      clearTimeout(timer)
      if (how === 'budget') {
        state.child.kill('SIGKILL')
        await state.exitedPromise
      }
      ended = { ...state.exited, killed: how === 'budget', shutdownMs: performance.now() - started }
    }
    for (const pending of [state?.runtimeWaiting, ...(state?.nextPending ?? []), ...[...(state?.extensions.values() ?? [])].map((e) => e.waiting)]) {
      pending?.destroy()
    }
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    return ended
  }

  return {
    api,
    client,
    invoke: managedInstances ? invokeConcurrently : invoke,
    init,
    shutdown,
    history,
    /** What the runtime process wrote to stdout and stderr so far. */
    output: () => environment?.output ?? '',
    /** The process id of the current environment's runtime, or undefined. */
    pid: () => environment?.child?.pid,
    /** Names of the extensions registered in the current environment. */
    extensions: () => [...(environment?.extensions.values() ?? [])].map((e) => e.name),
  }
}
