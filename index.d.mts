// Types of the ES module entry (index.mjs). index.d.ts describes the CommonJS module, whose default
// export an ES module sees as the whole module object; here the default is the function itself.
import { ApiCallRecorder } from './index.js'

export * from './index.js'
export default ApiCallRecorder
