import ApiCallRecorder from './index.js'

export default ApiCallRecorder
export const { Recorder } = ApiCallRecorder
export { ApiCallRecorder }
