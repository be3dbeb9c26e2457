// What Lambda's Node.js bootstrap does once the exec wrapper (if any) has run: start the runtime
// interface client on the handler setting (`_HANDLER`) in the task root (`LAMBDA_TASK_ROOT`), both
// read from the environment the wrapper leaves.
import { pathToFileURL } from 'node:url'

const { run } = await import(pathToFileURL(process.env.LAMBDA_RUNTIME_CLIENT).href)
await run(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER)
