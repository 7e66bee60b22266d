#!/usr/bin/env bash
# Runs one Node test script of tests/server; exit 77 (ctest SKIP) without node or
# the `openai` package in node_modules (a failure under CI=true).
# Usage: run_node_test.sh SRC_DIR MOE_BIN TMP SCRIPT
set -euo pipefail
SRC=$1; export MOE_BIN=$2; export MOE_TEST_TMP=$3; SCRIPT=$4
. "$SRC/tests/common/oracle.sh"
command -v node >/dev/null || missing_oracle "node (apt-get install nodejs)"
[ -d "$SRC/node_modules/openai" ] || missing_oracle "node_modules/openai (npm ci at the repo root)"
mkdir -p "$MOE_TEST_TMP"
cd "$SRC"
exec node "tests/server/$SCRIPT"
