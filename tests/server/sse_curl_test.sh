#!/usr/bin/env bash
# curl against `moe serve`: raw SSE framing and headers of a streamed chat, JSON
# error objects with their status codes, and a graceful shutdown: SIGTERM while a
# 3000-token stream is in flight ends that stream cleanly with [DONE] and the server exits 0.
# Usage: sse_curl_test.sh MOE_BIN WORKDIR
set -euo pipefail
MOE=$1; DIR=$2
mkdir -p "$DIR"; cd "$DIR"
. "$(dirname "$(readlink -f "$0")")/../common/oracle.sh"
command -v curl >/dev/null || missing_oracle "curl (apt-get install curl)"
fail() { echo "FAIL: $*"; exit 1; }
M=sse_model.gguf
[ -f $M ] || "$MOE" synth -o $M --arch qwen3moe --layers 2 --embd 128 --heads 4 --kv-heads 2 --head-dim 32 --experts 8 \
  --top-k 2 --expert-ff 64 --vocab 512 --type "${MOE_TEST_TYPE:-q8_0}" --std 0 >/dev/null 2>&1
"$MOE" serve -m $M --port 0 -np 2 -c 4096 --api-key k3y >serve.out 2>serve.err &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do grep -q 'listening on' serve.err && break; sleep 0.05; done
PORT=$(grep -o 'http://127.0.0.1:[0-9]*' serve.err | sed 's/.*://')
[ -n "$PORT" ] || fail "server did not start: $(cat serve.err)"
U=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -sf $U/health >/dev/null && break; sleep 0.05; done

# Status codes and error objects.
code() { curl -s -o body.json -w '%{http_code}' "$@"; }
[ "$(code $U/health)" = 200 ] || fail "/health"
[ "$(code $U/v1/models)" = 401 ] || fail "no key: not 401"
grep -q '"code":"invalid_api_key"' body.json || fail "401 body: $(cat body.json)"
[ "$(code -H 'Authorization: Bearer k3y' $U/v1/nope)" = 404 ] || fail "unknown route: not 404"
grep -q '"error":{' body.json || fail "404 body"
[ "$(code -H 'Authorization: Bearer k3y' $U/v1/chat/completions -d '{"messages":')" = 400 ] || fail "malformed JSON: not 400"
grep -q '"type":"invalid_request_error"' body.json || fail "400 body"

# SSE framing and headers.
curl -sN -D headers.txt -H 'Authorization: Bearer k3y' -H 'Content-Type: application/json' $U/v1/chat/completions \
  -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
  > sse.txt
grep -qi '^content-type: text/event-stream' headers.txt || fail "content-type: $(cat headers.txt)"
grep -qi '^transfer-encoding: chunked' headers.txt || fail "not chunked"
grep -qi '^cache-control: no-cache' headers.txt || fail "cache-control"
python3 - sse.txt <<'PY' || fail "SSE framing"
import json, sys
body = open(sys.argv[1], encoding='utf-8').read()
assert body.endswith('data: [DONE]\n\n'), body[-80:]
events = body.split('\n\n')[:-1]
data = [e[6:] for e in events if not e.startswith(':')]
assert all(e.startswith('data: ') or e.startswith(':') for e in events), events
chunks = [json.loads(d) for d in data[:-1]]
assert chunks[0]['choices'][0]['delta']['role'] == 'assistant'
assert all(c['object'] == 'chat.completion.chunk' for c in chunks)
assert len({c['id'] for c in chunks}) == 1
fin = [c for c in chunks if c['choices'] and c['choices'][0]['finish_reason']]
assert len(fin) == 1 and fin[0]['choices'][0]['finish_reason'] in ('stop', 'length')
assert chunks[-1]['choices'] == [] and chunks[-1]['usage']['completion_tokens'] > 0
PY

# Graceful shutdown: a long stream is in flight when SIGTERM arrives.
rm -f long.txt
curl -sN -H 'Authorization: Bearer k3y' $U/v1/completions \
  -d '{"prompt":"Once upon a time","max_tokens":3000,"ignore_eos":true,"stream":true}' > long.txt &
CURL=$!
for _ in $(seq 1 100); do [ -s long.txt ] && break; sleep 0.05; done
[ -s long.txt ] || fail "the long stream did not start"
kill -TERM $PID
set +e
wait $PID; RC=$?
wait $CURL; CRC=$?
set -e
[ $RC = 0 ] || fail "server exit code $RC: $(tail -3 serve.err)"
[ $CRC = 0 ] || fail "curl exit code $CRC"
tail -c 14 long.txt | grep -q 'data: \[DONE\]' || fail "in-flight stream not finished cleanly: $(tail -c 200 long.txt)"
grep -q 'SIGTERM received' serve.err || fail "no shutdown log"
curl -s $U/health >/dev/null 2>&1 && fail "still accepting after shutdown"

# Shutdown deadline: a stream still running after --shutdown-grace is cancelled
# with an error event, still followed by [DONE]; exit code 0.
"$MOE" serve -m $M --port 0 -np 1 -c 8192 --max-tokens 8000 --shutdown-grace 0.2 >serve2.out 2>serve2.err &
PID=$!
for _ in $(seq 1 200); do grep -q 'listening on' serve2.err && break; sleep 0.05; done
U=http://127.0.0.1:$(grep -o 'http://127.0.0.1:[0-9]*' serve2.err | sed 's/.*://')
for _ in $(seq 1 100); do curl -sf $U/health >/dev/null && break; sleep 0.05; done
rm -f cut.txt
curl -sN $U/v1/completions -d '{"prompt":"Once","max_tokens":8000,"ignore_eos":true,"stream":true}' > cut.txt &
CURL=$!
for _ in $(seq 1 100); do [ -s cut.txt ] && break; sleep 0.05; done
kill -TERM $PID
set +e
wait $PID; RC=$?
wait $CURL; CRC=$?
set -e
[ $RC = 0 ] && [ $CRC = 0 ] || fail "deadline shutdown: server $RC, curl $CRC"
tail -c 14 cut.txt | grep -q 'data: \[DONE\]' || fail "cancelled stream without [DONE]"
grep -q '"finish_reason":"length"' cut.txt || grep -q '^data: {"error":' cut.txt || fail "cancelled stream without an error event"
echo "sse_curl_test: OK"
