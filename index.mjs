import ApiCallRecorder from './index.js'

export default ApiCallRecorder
export const { Recorder, recorderPlugin, instrumentSdkV3, sdkV3Stats } = ApiCallRecorder
export { ApiCallRecorder }
