// The environment of a bench child that makes real SDK calls: moto's fake credentials, aws-sdk v2's
// CSM on towards the recorder's port, and no shared config or credentials files of the machine's.
import path from 'node:path'
import { FAKE_CREDENTIALS } from '../../__test__/helpers/moto.mjs'

export function useSdkEnvironment(dir, csmPort, extra = {}) {
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: csmPort,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
  }, extra)
}
