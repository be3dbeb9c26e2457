#!/usr/bin/env bash
# Fuzzes the CSM datagram parser and the record writers for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 seconds per target, all targets)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes `-Z` flags to rustc; on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them (a nightly toolchain works as is). Builds go to
# $CARGO_TARGET_DIR (default fuzz/target). The seed corpus is fuzz/seeds (real SDK datagrams and a
# few hostile ones); what the fuzzer finds goes to fuzz/corpus/<target>, crashes to
# fuzz/artifacts/<target>. A crash fails the script; turn it into a test under tests/
# (tests/fuzz_regressions.rs). FUZZ_KEEP_GOING=1 keeps fuzzing past crashes (libFuzzer fork mode)
# and still fails at the end if any were found.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse_datagram writers ingest)
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

keep_going=()
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)

status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  failed=0
  echo "== fuzz $target for ${seconds}s"
  # -rss_limit_mb and -max_len bound the run: a CSM datagram is at most 64 KiB on the wire.
  if ! cargo fuzz run "$target" "corpus/$target" seeds -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="artifacts/$target/" -print_final_stats=1 "${keep_going[@]}"; then
    failed=1
  fi
  after=$(find "artifacts/$target" -type f | wc -l)
  if [ "$failed" != 0 ] || [ "$after" -gt "$before" ]; then
    echo "!! $target: $((after - before)) new crash inputs in fuzz/artifacts/$target/" >&2
    status=1
  fi
done
exit $status
