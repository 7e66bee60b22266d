#!/usr/bin/env bash
# Installs everything moe needs on a fresh Debian 12 machine and builds it.
#   bash scripts/setup.sh [preset] [target]
#     preset: release (default), ci, debug, asan; target: one build target (default: all)
# Debian packages: the compiler toolchain and the libraries listed in README.md.
# npm packages (package.json): the independent references the tests compare with.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
target="${2:-}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
packages=(cmake g++ make pkg-config git curl
  libhwy-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev
  libpcre2-dev libutf8proc-dev libgtest-dev libgmock-dev libbenchmark-dev python3-torch
  libopenmpi-dev openmpi-bin)
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules/@lenml/tokenizers ] || [ ! -d node_modules/@fugood/llama.node ]; then
  echo "setup: installing npm test oracles"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building (preset $preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)" ${target:+--target "$target"}
