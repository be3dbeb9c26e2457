#!/usr/bin/env bash
# Installs what the package, the demo and the tests need, in a clone of the repository:
#   - the build tools of the Lambda runtime interface client (aws-lambda-ric, a dev dependency that
#     compiles curl and aws-lambda-cpp when installed): cmake, autoconf, automake, libtool, g++, make;
#     on Debian and Ubuntu they are installed with apt-get, elsewhere the script says what is missing;
#   - Chromium, in which the report tests open the generated pages (Debian's and Ubuntu's chromium
#     package; elsewhere set CHROMIUM to a Chromium binary);
#   - the package's npm dependencies (npm install builds the native addon with cargo);
#   - the backend's dependencies (the Serverless Framework, for the backend tests).
# Python packages come from requirements.txt (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

# libtoolize is the libtool package's command.
tools=(cmake autoconf automake libtoolize make g++)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing build tools: ${missing[*]}"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
      cmake autoconf automake libtool make g++ >/dev/null
  else
    echo "missing build tools: ${missing[*]} (install them with your package manager, then run this again)" >&2
    exit 1
  fi
fi

# The report tests drive Debian's chromium package through playwright-core (no browser download).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium (for the report tests)"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  # Ubuntu ships Chromium as a snap, not as this package: then the report tests say they are skipped.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
    echo "could not install the chromium package; the report tests will be skipped (or set CHROMIUM to a Chromium binary)" >&2
fi

echo "== npm install"
npm install --no-audit --no-fund
echo "== backend: npm ci"
npm ci --prefix backend --no-audit --no-fund
