// Public API of aws-api-call-recorder. The native types come from the generated binding.d.ts.

import type { FlushReport, RecorderStats, InvocationInfo } from './binding'
import { recorderPlugin, instrumentSdkV3 } from './sdk-v3'

export type { FlushReport, RecorderStats, InvocationInfo } from './binding'
export { recorderPlugin, instrumentSdkV3 }
export type { RecorderPluginOptions, RecorderPlugin, SdkV3Instrumentation, EventIngester } from './sdk-v3'

/** Where flushed records go. */
export type Sink = 'firehose' | 'file' | 'stdout' | 'none'

/** Something with a `warn` method, such as `console` or a Powertools Logger. */
export interface Logger {
  warn(message: string): void
}

/**
 * Options for {@link ApiCallRecorder} and {@link Recorder}. Each option wins over its environment
 * variable, which wins over the default.
 */
export interface RecorderOptions {
  /**
   * Record at all. When off, `ApiCallRecorder` returns the handler itself and opens no socket.
   * Env: on when `API_CALL_RECORDER_IS_ACTIVATED` is `true` (or `1`, `yes`, `on`), off when it is
   * anything else; when it is unset, on when `NODE_ENV=development`.
   * @default false
   */
  enabled?: boolean
  /**
   * Address to receive CSM datagrams on. Anything but loopback lets other hosts send records, and
   * logs a warning. Env: `AWS_CSM_HOST` (the variable the SDKs send to).
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * UDP port to receive CSM datagrams on; `0` picks a free port. Env: `AWS_CSM_PORT`.
   * @default 31000
   */
  port?: number
  /**
   * Where flushed records go. Env: `API_CALL_RECORDER_SINK`.
   * @default 'firehose' when a delivery stream is set, else 'file' when a file is set, else 'stdout'
   */
  sink?: Sink
  /**
   * File that records are appended to (created with its folders if missing). Env: `API_CALL_RECORDER_FILE`.
   */
  file?: string
  /**
   * Record format for the file and stdout sinks: JSON Lines, or CSV with a header row.
   * Env: `API_CALL_RECORDER_FORMAT`.
   * @default 'csv' for a file ending in .csv, else 'jsonl'
   */
  format?: 'jsonl' | 'csv'
  /**
   * Amazon Data Firehose delivery stream to send records to with PutRecordBatch. The region comes
   * from `AWS_REGION`; `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL` override the endpoint.
   * Env: `API_CALL_RECORDER_DELIVERY_STREAM_NAME`.
   */
  deliveryStreamName?: string
  /**
   * Leave the access key id (`AccessKey`) out of records. The session token is always removed.
   * Env: `API_CALL_RECORDER_DROP_ACCESS_KEY`.
   * @default false
   */
  dropAccessKey?: boolean
  /**
   * Most records held between flushes; more are dropped and counted. Env: `API_CALL_RECORDER_MAX_BUFFERED_RECORDS`.
   * @default 100000
   */
  maxBufferedRecords?: number
  /**
   * Most bytes held between flushes; more are dropped and counted. Env: `API_CALL_RECORDER_MAX_BUFFERED_BYTES`.
   * @default 67108864
   */
  maxBufferedBytes?: number
  /**
   * Upper bound, in milliseconds, on waiting after the handler settles for the events of its calls.
   * The wait ends as soon as it is safe: once the v3 calls still in flight have finished and a
   * marker datagram sent after the event loop has turned (aws-sdk v2 sends from this process's
   * loop) has arrived. Env: `API_CALL_RECORDER_DRAIN_MS`.
   * @default 25
   */
  drainMs?: number
  /**
   * Upper bound on one flush in milliseconds. In Lambda the flush also ends 300 ms before the
   * invocation's deadline (`context.getRemainingTimeInMillis()`); what is undelivered then is counted
   * as failed and reported in one warning. Env: `API_CALL_RECORDER_FLUSH_TIMEOUT_MS`.
   * @default 10000
   */
  flushTimeoutMs?: number
  /**
   * `ApiCallRecorder` only: also record the calls of every AWS SDK for JavaScript v3 client in the
   * process, which sends no CSM datagrams of its own (see `instrumentSdkV3`). Their events go straight
   * into this recorder.
   * @default true
   */
  sdkV3?: boolean
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
   * Mark records received before the first invocation `phase: 'init'`. `ApiCallRecorder` always
   * does; a plain `Recorder` does only inside Lambda, and its records otherwise carry no phase
   * until `beginInvocation` is called.
   * @default true inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set), else false
   */
  initPhase?: boolean
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
 * an unusable value), `ERR_RECORDER_PORT_IN_USE`, `ERR_RECORDER_BIND`, `ERR_RECORDER_RUNTIME`,
 * `ERR_RECORDER_NATIVE_LOAD` (the native addon does not load on this platform).
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
  /** Takes in what is queued and closes the socket. Buffered records stay for `flush()`. */
  stop(): Promise<void>
  /**
   * Waits `drainMs` (default: the option) for late datagrams, then delivers the buffer to the sink
   * within `flushTimeoutMs`. `timeoutMs` caps the whole call, drain included.
   */
  flush(options?: { drainMs?: number; timeoutMs?: number }): Promise<FlushReport>
  /** Counters since the recorder was created. */
  stats(): RecorderStats
  /** The buffered, not yet flushed records, oldest first. */
  records(): ApiCallRecord[]
  /** Removes the buffered records and returns them, oldest first. */
  takeRecords(): ApiCallRecord[]
  /** Takes in one CSM event (a JSON string) produced in this process, as if it had been received. */
  ingest(eventJson: string): void
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
  /** Epoch milliseconds when the call (or the attempt) started. */
  Timestamp?: number
  AttemptCount?: number
  /** Milliseconds for the whole call, retries included. */
  Latency?: number
  MaxRetriesExceeded?: number
  FinalHttpStatusCode?: number
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
  /** `init` before the first invocation began, `invoke` after; absent outside Lambda's life cycle. */
  phase?: 'init' | 'invoke'
  coldStart?: boolean
  /** Epoch milliseconds when the recorder received the event. */
  recordedAt: number
  /** Fields a newer SDK sends, kept as received. */
  [field: string]: unknown
}

/** A Lambda handler, async or callback-style. */
export type Handler<TEvent = any, TResult = any> =
  | ((event: TEvent, context: any) => Promise<TResult> | TResult)
  | ((event: TEvent, context: any, callback: (error?: unknown, result?: TResult) => void) => void | Promise<TResult>)

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
  handler: Handler<TEvent, TResult>,
  options?: RecorderOptions,
): (event: TEvent, context?: any) => Promise<TResult>

declare namespace ApiCallRecorder {
  export { ApiCallRecorder, Recorder, recorderPlugin, instrumentSdkV3 }
}

export { ApiCallRecorder }
export default ApiCallRecorder
