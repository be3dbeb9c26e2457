import sdkV3 from './index.js'

export const { recorderPlugin, instrumentSdkV3, sdkV3Stats } = sdkV3
