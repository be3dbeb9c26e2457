#!/bin/sh
# The layer's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-api-call-recorder): the runtime loads the
# layer's handler module, which starts recording, then loads and wraps the function's own handler
# (moved aside to API_CALL_RECORDER_HANDLER). The function's code, NODE_OPTIONS and the rest of the
# environment are left as they are; "$@" is the runtime's own command, run in this process.
# Lambda runs the wrapper by its absolute path: its folder is then a substitution away, without the
# subshell and `dirname` a relative path needs (a millisecond and more of every cold start).
case $0 in
  /*) layer_dir=${0%/*} ;;
  *) layer_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) ;;
esac
handler_module="$layer_dir/nodejs/node_modules/aws-api-call-recorder/layer/handler.mjs"
# Only once, and only where the layer's package is complete: otherwise the function runs unchanged.
if [ -n "${_HANDLER:-}" ] && [ -z "${API_CALL_RECORDER_HANDLER:-}" ] && [ -f "$handler_module" ]; then
  export API_CALL_RECORDER_HANDLER="$_HANDLER"
  export _HANDLER="${handler_module%.mjs}.handler"
fi
exec "$@"
