// Public API of aws-api-call-recorder. The native types come from the generated binding.d.ts.

import type { FlushReport, RecorderStats, InvocationInfo, ProxyStart, ProxyStarted, RecorderOptions as NativeRecorderOptions } from './binding'
import { recorderPlugin, instrumentSdkV3 } from './sdk-v3/index'

export type { FlushReport, RecorderStats, RecordingPaths, PathCounts, CsmCounts, InvocationInfo, ProxyCounts, ProxyStart, ProxyStarted } from './binding'
export { recorderPlugin, instrumentSdkV3 }
export type { RecorderPluginOptions, RecorderPlugin, SdkV3Instrumentation, EventIngester } from './sdk-v3/index'

/** Where flushed records go. */
export type Sink = NonNullable<NativeRecorderOptions['sink']>

/** Something with a `warn` method, such as `console` or a Powertools Logger. */
export interface Logger {
  warn(message: string): void
}

/**
 * Options for {@link ApiCallRecorder} and {@link Recorder}: the native recorder's options (see
 * `binding.d.ts`, generated from the Rust declaration) and the JavaScript side's own. Each option
 * wins over its environment variable, which wins over the default.
 */
export interface RecorderOptions extends NativeRecorderOptions {
  /**
   * Record at all. When off, `ApiCallRecorder` returns the handler itself and opens no socket.
   * Env: `API_CALL_RECORDER_IS_ACTIVATED` (a boolean), which, when set, wins over `NODE_ENV`.
   * @default on when `NODE_ENV=development`, else off
   */
  enabled?: boolean
  /**
   * `ApiCallRecorder` only: also record the calls of every AWS SDK for JavaScript v3 client in the
   * process, which sends no CSM datagrams of its own (see `instrumentSdkV3`). Their events go straight
   * into this recorder.
   * @default true
   */
  sdkV3?: boolean
  /**
   * `ApiCallRecorder` only, with `sdkV3`: also record v3 calls from Node's HTTP client
   * (`http.client.*` diagnostics channels), for SDKs bundled into the function file (esbuild,
   * webpack), which the automatic instrumentation cannot patch. Requests and responses are only read.
   * Calls the plugin records are not recorded again; requests of aws-sdk v2 and other HTTP traffic
   * are ignored. An operation that cannot be told from the request is recorded without `Api`, with
   * `ApiUnknown: true`. The wrapper warns once when it records calls this way.
   * @default `true` (with `sdkV3`)
   */
  sdkV3Http?: boolean
  /**
   * `ApiCallRecorder` in Lambda only: deliver each invocation's records after its response. The
   * recorder registers as a Lambda internal extension during init (when `ApiCallRecorder` is called
   * at module load); the handler's outcome is returned as soon as it settles, and the records are
   * delivered before the environment is frozen, bounded by the invocation's deadline. Time spent
   * after the response is billed as part of the invocation. When off, outside Lambda, or when the
   * registration fails (one warning: for example when the handler is wrapped after init), records
   * are delivered before the outcome is returned. Env: `API_CALL_RECORDER_AFTER_RESPONSE`.
   * @default true
   */
  afterResponse?: boolean
  /**
   * `ApiCallRecorder` only: record, on each call of the v3 SDK and of aws-sdk v2 in this process, the
   * resources its input named (`Resources`: ARNs per IAM action, identifiers only), for
   * `api-call-recorder policy`. Off for the whole process when false. Env: `API_CALL_RECORDER_RESOURCES`.
   * @default true
   */
  resources?: boolean
  /**
   * Where warnings go. The recorder never throws into the handler; it warns instead.
   * @default console
   */
  logger?: Logger
}

/**
 * Records the AWS API calls of this process that SDKs report through Client-Side Monitoring.
 * For scripts and tools; Lambda handlers use {@link ApiCallRecorder}.
 *
 * Errors thrown carry a stable `code`: `ERR_RECORDER_CONFIG` (an option or environment variable has
 * an unusable value, such as a number option that is not a whole number in its range: numbers are
 * never rounded or wrapped), `ERR_RECORDER_PORT_IN_USE`, `ERR_RECORDER_BIND`, `ERR_RECORDER_EXTENSION`
 * (Lambda refused the extension; `ApiCallRecorder` warns with it), `ERR_RECORDER_OUTPUT` (records
 * cannot be written where the command line's `--output` points), `ERR_RECORDER_PROXY` (the
 * recording proxy cannot start), `ERR_RECORDER_NATIVE_LOAD` (the
 * native addon does not load on this platform).
 */
export declare class Recorder {
  /** @throws Error with `code` `ERR_RECORDER_CONFIG` or `ERR_RECORDER_NATIVE_LOAD`. */
  constructor(options?: RecorderOptions)
  /**
   * Binds the UDP port and starts receiving, off the JS thread. Does not keep the process alive.
   * @returns the bound `host:port`.
   * @throws Error with `code` `ERR_RECORDER_PORT_IN_USE` or `ERR_RECORDER_BIND`.
   */
  start(): string
  /**
   * Takes in what is queued and closes the socket. Buffered records stay for `flush()`. Datagrams
   * skipped and calls dropped since the last report are reported in one warning.
   */
  stop(): Promise<void>
  /**
   * Waits `drainMs` (default: the option) for late datagrams, then delivers the buffer to the sink
   * within `flushTimeoutMs`. `timeoutMs` caps the whole call, drain included. Both are whole
   * milliseconds; any other number rejects the call. Datagrams skipped (malformed or over the size
   * limit) and calls dropped (buffer full) since the last report are reported in one warning.
   */
  flush(options?: { drainMs?: number; timeoutMs?: number }): Promise<FlushReport>
  /** Counters since the recorder was created, and what each recording path took in. */
  stats(): RecorderStats
  /** The buffered, not yet flushed records, oldest first. */
  records(): ApiCallRecord[]
  /** Removes the buffered records and returns them, oldest first. */
  takeRecords(): ApiCallRecord[]
  /**
   * Takes in one CSM event (a JSON string), as if it had been received. `path` says how it was made,
   * for `stats().paths`: `plugin` and `http` are the v3 SDK recording paths, `sdk-v2` aws-sdk v2's
   * own events, `proxy` the recording proxy's; the default is `csm`.
   */
  ingest(eventJson: string, path?: 'csm' | 'plugin' | 'http' | 'sdk-v2' | 'proxy'): void
  /**
   * Starts the recording proxy on 127.0.0.1 (a free port) with a certificate authority made for
   * this run: requests to AWS endpoints through it are decrypted, forwarded unchanged (to
   * `upstream` when given) and recorded (`stats().paths.proxy`, `stats().proxy`); other tunnels pass
   * untouched. Each record is named from the service models (service id, operation, the resources
   * its input names) before it is buffered. Returns its address, the CA files and the variables a
   * program sets to use it.
   * @throws Error with `code` `ERR_RECORDER_PROXY` or `ERR_RECORDER_CONFIG` (a bad `upstream`).
   */
  startProxy(options?: Omit<ProxyStart, 'holdForNaming'>): ProxyStarted
  /** Stops the proxy, records calls still waiting for a retry and removes the CA directory. */
  stopProxy(): Promise<void>
  /** The proxy's warnings since the last call (a client that refused its CA), one line each. */
  takeProxyWarnings(): string[]
  /** Attributes records received from now on to this invocation. */
  beginInvocation(info?: InvocationInfo): number
  /** Drains, stops attributing to the invocation and flushes. */
  finishInvocation(id: number, options?: { drainMs?: number; timeoutMs?: number }): Promise<FlushReport>
  /**
   * Like `finishInvocation`, but the drain ends as soon as a marker datagram sent now has arrived
   * (at most `drainMs`): everything sent before it has been taken in. Call it once the events are
   * sent (after a turn of the event loop).
   */
  settleInvocation(id: number, options?: { drainMs?: number; timeoutMs?: number }): Promise<FlushReport>
  /** The configured `drainMs`. */
  readonly drainMs: number
  /** The bound `host:port`, or null when not running. */
  readonly address: string | null
  /** The `host:port` that `start()` binds. */
  readonly bindAddress: string
  /** The sink in use. */
  readonly sink: Sink
}

/**
 * One recorded event: the CSM fields as the SDK sent them (without `SessionToken`), plus where and
 * when it was recorded.
 */
export interface ApiCallRecord {
  Type: 'ApiCall' | 'ApiCallAttempt' | string
  Version?: number
  ClientId?: string
  /** The service model's serviceId, such as `S3` or `DynamoDB` (not the IAM prefix). */
  Service?: string
  /** The operation name, such as `GetObject`. */
  Api?: string
  /**
   * `true` on records of bundled v3 SDK calls (option `sdkV3Http`) whose operation could not be told
   * from the HTTP request; `Api` is then absent.
   */
  ApiUnknown?: boolean
  /** Epoch milliseconds when the call (or the attempt) started. */
  Timestamp?: number
  AttemptCount?: number
  /** Milliseconds for the whole call, retries included. */
  Latency?: number
  MaxRetriesExceeded?: number
  FinalHttpStatusCode?: number
  /**
   * On `ApiCall` records of calls made in this process (v3 SDK; aws-sdk v2 under the wrapper): the IAM
   * actions the call needed, each with the ARNs of the resources its input named, or `["*"]` when none
   * could be built. Identifiers only, each cut to 256 characters. Absent for calls known only from CSM.
   */
  Resources?: Record<string, string[]>
  FinalAwsException?: string
  FinalAwsExceptionMessage?: string
  FinalSdkException?: string
  FinalSdkExceptionMessage?: string
  Region?: string
  UserAgent?: string
  Fqdn?: string
  AttemptLatency?: number
  HttpStatusCode?: number
  AccessKey?: string
  XAmznRequestId?: string
  XAmzRequestId?: string
  XAmzId2?: string
  AwsException?: string
  AwsExceptionMessage?: string
  SdkException?: string
  SdkExceptionMessage?: string
  functionName?: string
  functionVersion?: string
  awsRequestId?: string
  /**
   * For a record known only by when it arrived (a CSM datagram of another program) while several
   * invocations ran: their request ids, one of which made the call. `awsRequestId` is then absent.
   */
  candidateRequestIds?: string[]
  /** `init` before the first invocation began, `invoke` after; absent outside Lambda's life cycle. */
  phase?: 'init' | 'invoke'
  coldStart?: boolean
  /** Epoch milliseconds when the recorder received the event. */
  recordedAt: number
  /** Fields a newer SDK sends, kept as received. */
  [field: string]: unknown
}

/** The callback a callback-style Lambda handler responds through. */
export type Callback<TResult = any> = (error?: unknown, result?: TResult) => void

/** An async Lambda handler (or one that returns its result). */
export type AsyncHandler<TEvent = any, TResult = any> = (event: TEvent, context: any) => Promise<TResult> | TResult

/** A callback-style Lambda handler: it responds through `callback`. */
export type CallbackHandler<TEvent = any, TResult = any> = (
  event: TEvent,
  context: any,
  callback: Callback<TResult>,
) => void | Promise<TResult>

/** A Lambda handler, async or callback-style. */
export type Handler<TEvent = any, TResult = any> = AsyncHandler<TEvent, TResult> | CallbackHandler<TEvent, TResult>

/**
 * Wraps a Lambda handler so that the AWS API calls it makes are recorded.
 *
 * When active (see {@link RecorderOptions.enabled}), the receiver binds when `ApiCallRecorder` is
 * called, at module load, so calls made during init are recorded with `phase: 'init'`; it stays bound
 * across invocations. Each invocation: the handler runs and its result is returned or its error
 * rethrown, unchanged. In Lambda the records are delivered after the response (see
 * {@link RecorderOptions.afterResponse}); elsewhere the recorder waits for the calls' events (at most
 * `drainMs`) and flushes before returning. Recorder problems (port taken, sink down, bad traffic)
 * are logged once through `logger.warn`, never thrown.
 *
 * The wrapper keeps the runtime's handler semantics: a response-streaming handler
 * (`awslambda.streamifyResponse`) stays one and gets the stream; in Lambda runtimes that accept
 * callback-style handlers (nodejs22.x and earlier), a callback-style handler is wrapped as one, so the
 * runtime still waits for an empty event loop unless `context.callbackWaitsForEmptyEventLoop` is
 * false. Elsewhere (nodejs24.x and later, scripts, tests) the wrapper is an async handler, which
 * also accepts callback-style handlers.
 *
 * Returns `handler` itself when not active or when recording cannot start.
 */
declare function ApiCallRecorder<TEvent = any, TResult = any>(
  handler: AsyncHandler<TEvent, TResult>,
  options?: RecorderOptions,
): (event: TEvent, context?: any) => Promise<TResult>
/**
 * A callback-style handler gives a handler the runtime can call either way: with a callback, which
 * it answers through (nodejs22.x and earlier), or without one, when it returns a promise of the
 * result (nodejs24.x and later, scripts, tests).
 */
declare function ApiCallRecorder<TEvent = any, TResult = any>(
  handler: CallbackHandler<TEvent, TResult>,
  options?: RecorderOptions,
): (event: TEvent, context?: any, callback?: Callback<TResult>) => void | Promise<TResult>

declare namespace ApiCallRecorder {
  export { ApiCallRecorder, Recorder, recorderPlugin, instrumentSdkV3 }
}

export { ApiCallRecorder }
export default ApiCallRecorder
