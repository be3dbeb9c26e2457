import ApiCallRecorder from './index.js'

export default ApiCallRecorder
export const { Recorder, recorderPlugin, instrumentSdkV3 } = ApiCallRecorder
export { ApiCallRecorder }
