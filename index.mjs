import ApiCallRecorder from './index.bundle.js'

export default ApiCallRecorder
export const { Recorder, recorderPlugin, instrumentSdkV3 } = ApiCallRecorder
export { ApiCallRecorder }
