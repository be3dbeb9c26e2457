// A real moto server on loopback for a test file, and the environment aws-sdk v2 needs to report to the recorder.
import path from 'node:path'
import { freeUdpPort } from './ports.mjs'

import { FAKE_CREDENTIALS } from '../../scripts/local-aws.mjs'

export { startMoto, FAKE_CREDENTIALS } from '../../scripts/local-aws.mjs'

/**
 * Environment for aws-sdk v2 with Client-Side Monitoring on, sending to a free port: the fake
 * credentials, and no user config files (under `dir`, which need not exist). aws-sdk v2 reads it
 * once, when it is first required, so assign it to process.env before that.
 */
export async function sdkV2CsmEnv(dir, extra = {}) {
  return {
    ...FAKE_CREDENTIALS,
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(await freeUdpPort()),
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    ...extra,
  }
}
