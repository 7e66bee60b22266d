#!/bin/sh
# ctest driver for the llama.cpp oracle (tests/oracle/README.md).
# Usage: oracle_test.sh MOE_BINARY SOURCE_DIR [oracle_compare.mjs options]
# Exit: 0 pass, 1 fail, 77 skip (node or @fugood/llama.node missing; a failure under CI=true).
MOE="$1"; SRC="$2"
if [ -z "$MOE" ] || [ -z "$SRC" ]; then echo "usage: $0 MOE_BINARY SOURCE_DIR" >&2; exit 2; fi
. "$SRC/tests/common/oracle.sh"
shift 2
NODE="${NODE:-$(command -v node)}"
if [ -z "$NODE" ]; then missing_oracle "node (apt-get install nodejs)"; fi
if [ ! -f "$SRC/node_modules/@fugood/llama.node/package.json" ] && [ -z "$MOE_NODE_MODULES_ROOT" ]; then
  missing_oracle "$SRC/node_modules/@fugood/llama.node (npm ci at the repo root)"
fi
if ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  missing_oracle "node >= 18 (found $("$NODE" --version))"
fi
MOE_NODE_MODULES_ROOT="${MOE_NODE_MODULES_ROOT:-$SRC}" exec "$NODE" "$SRC/tests/oracle/oracle_compare.mjs" "$MOE" "$@"
