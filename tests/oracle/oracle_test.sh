#!/bin/sh
# ctest driver for the llama.cpp oracle (tests/oracle/README.md).
# Usage: oracle_test.sh MOE_BINARY SOURCE_DIR [oracle_compare.mjs options]
# Exit: 0 pass, 1 fail, 77 skip (node or @fugood/llama.node missing).
MOE="$1"; SRC="$2"
if [ -z "$MOE" ] || [ -z "$SRC" ]; then echo "usage: $0 MOE_BINARY SOURCE_DIR" >&2; exit 2; fi
shift 2
NODE="${NODE:-$(command -v node)}"
if [ -z "$NODE" ]; then echo "SKIP: node not found"; exit 77; fi
if [ ! -f "$SRC/node_modules/@fugood/llama.node/package.json" ] && [ -z "$MOE_NODE_MODULES_ROOT" ]; then
  echo "SKIP: $SRC/node_modules/@fugood/llama.node not found (run npm install at the repo root)"; exit 77
fi
if ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "SKIP: node >= 18 needed ($("$NODE" --version))"; exit 77
fi
MOE_NODE_MODULES_ROOT="${MOE_NODE_MODULES_ROOT:-$SRC}" exec "$NODE" "$SRC/tests/oracle/oracle_compare.mjs" "$MOE" "$@"
