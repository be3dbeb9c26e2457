// Recording for the AWS SDK for JavaScript v3 (@aws-sdk/*), which sends no Client-Side Monitoring
// events of its own. See the modules in this folder for how the events are produced.

/** Anything that takes in CSM events as JSON strings, such as a running {@link Recorder}. */
export interface EventIngester {
  /** `path` names how the event was made (`plugin` or `http`), for the recorder's per-path counts. */
  ingest(eventJson: string, path?: 'csm' | 'plugin' | 'http'): void
}

/**
 * Options for {@link recorderPlugin}. The `csm*` options and `clientId` win over the environment
 * variables aws-sdk v2 reads, which win over the shared config file's `csm_*` keys.
 */
export interface RecorderPluginOptions {
  /**
   * Where events go. A recorder takes them in directly (no UDP). `null` always sends CSM
   * datagrams (when CSM is enabled). Unset: the recorder that `ApiCallRecorder` (or
   * {@link instrumentSdkV3}) is recording into, else CSM datagrams.
   * @default undefined
   */
  recorder?: EventIngester | null
  /**
   * The `Service` value. Unset: the client's `serviceId` as the signer sees it; for unsigned
   * calls the client class name without `Client` (`SecretsManager` for the serviceId
   * `Secrets Manager`).
   */
  serviceId?: string
  /**
   * `ClientId` in every event, cut to 255 characters. Env: `AWS_CSM_CLIENT_ID`; file: `csm_client_id`.
   * @default ''
   */
  clientId?: string
  /**
   * Send CSM datagrams when there is no recorder. Env: `AWS_CSM_ENABLED` (on for any value but
   * `false` and `0`, as in aws-sdk v2); file: `csm_enabled`.
   * @default false
   */
  csmEnabled?: boolean
  /**
   * Datagram destination host (IPv4). Env: `AWS_CSM_HOST`; file: `csm_host`.
   * @default '127.0.0.1'
   */
  csmHost?: string
  /**
   * Datagram destination port. Env: `AWS_CSM_PORT`; file: `csm_port`.
   * @default 31000
   */
  csmPort?: number
}

/** The part of the v3 SDK's `Pluggable` interface the plugin implements. */
export interface RecorderPlugin {
  applyToStack(stack: {
    add(middleware: unknown, options: Record<string, unknown>): void
  }): void
}

/**
 * A v3 SDK plugin that records every call of a client as the CSM events aws-sdk v2 sends: one
 * `ApiCallAttempt` per HTTP attempt (retries included) and one `ApiCall` per call, with the same
 * fields (`Service`, `Api`, `AttemptCount`, `Latency`, `HttpStatusCode`, `AwsException`, ...).
 * Never the session token. The SDK call's result, error and retries are unchanged, and a failure
 * inside the plugin never fails the call.
 *
 * @example
 * const s3 = new S3Client({})
 * s3.middlewareStack.use(recorderPlugin())
 */
export declare function recorderPlugin(options?: RecorderPluginOptions): RecorderPlugin

/** Returned by {@link instrumentSdkV3}. */
export interface SdkV3Instrumentation {
  /** Copies of the SDK's client class that this call patched. */
  readonly patched: number
  /** Stops recording through the automatic instrumentation. Added middlewares stay, inert. */
  stop(): void
}

/**
 * Records the calls of every v3 client in the process. `ApiCallRecorder` turns this on for its
 * recorder (option `sdkV3`). Events go to `recorder`, or without one as CSM datagrams when
 * `AWS_CSM_ENABLED` is on. A later call replaces the earlier target.
 *
 * How: `Client.prototype.send` of each copy of the SDK's client class (`@smithy/core/client`,
 * `@smithy/smithy-client`) loaded through `require` — already loaded ones found in `require.cache`,
 * later ones through a `Module._load` hook — adds {@link recorderPlugin} to a client on its first
 * `send`. Clients that already have the plugin are left alone.
 *
 * Limits: an SDK bundled into one file (esbuild, webpack) does not load those modules by name and is
 * not patched: use {@link recorderPlugin} there, or `http: true`. Neither is a client whose class overrides
 * `send` without calling the base `send`.
 */
export declare function instrumentSdkV3(options?: {
  recorder?: EventIngester | null
  /**
   * Also record v3 calls from Node's HTTP client diagnostics channels, for SDK copies that cannot be
   * patched (bundled into one file). Requests of calls the plugin records are skipped.
   * `ApiCallRecorder` turns this on (its option `sdkV3Http`).
   * @default false
   */
  http?: boolean
}): SdkV3Instrumentation

/** Counters since the process started, for diagnostics and tests. */
export interface SdkV3Stats {
  /** `ApiCall` events produced. */
  calls: number
  /** `ApiCallAttempt` events produced. */
  attempts: number
  /** Events handed to an in-process recorder. */
  delivered: number
  /** Events sent as CSM datagrams. */
  sent: number
  /** Events over the 8 KiB CSM limit, dropped. */
  oversized: number
  /** Recording steps that failed (the SDK call itself is unaffected). */
  failures: number
  /** Calls recorded from Node's HTTP client (bundled SDKs). */
  httpCalls: number
  /** Attempts recorded from Node's HTTP client. */
  httpAttempts: number
  /** Of `httpCalls`, those whose operation could not be told (recorded with `ApiUnknown: true`). */
  httpUnidentified: number
  /** v3 requests the HTTP layer left to the plugin, which records their calls. */
  httpSkipped: number
  /** Whether the automatic instrumentation is on. */
  instrumenting: boolean
  /** Whether calls are recorded from Node's HTTP client. */
  httpLayer: boolean
}

/** The plugin's and the automatic instrumentation's counters since the process started. */
export declare function sdkV3Stats(): SdkV3Stats
