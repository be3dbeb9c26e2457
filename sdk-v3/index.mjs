import sdkV3 from './public.js'

export const { recorderPlugin, instrumentSdkV3, sdkV3Stats } = sdkV3
