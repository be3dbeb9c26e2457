'use strict'

// The package's folder, for the files read at run time (the native addon, the data tables). A module
// asks here rather than using its own __dirname, which in the bundled entry (index.bundle.js, made
// by scripts/bundle.mjs) is the bundle's folder for every module.
module.exports = __dirname
