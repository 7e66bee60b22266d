#!/usr/bin/env bash
# Runs one Node test script of tests/server; exit 77 (ctest SKIP) without node or
# the `openai` package in node_modules. Usage: run_node_test.sh SRC_DIR MOE_BIN TMP SCRIPT
set -euo pipefail
SRC=$1; export MOE_BIN=$2; export MOE_TEST_TMP=$3; SCRIPT=$4
command -v node >/dev/null || { echo "node missing: skip"; exit 77; }
[ -d "$SRC/node_modules/openai" ] || { echo "node_modules/openai missing (npm ci): skip"; exit 77; }
mkdir -p "$MOE_TEST_TMP"
cd "$SRC"
exec node "tests/server/$SCRIPT"
