#!/usr/bin/env bash
# The demo pipeline: simulated receiver on a pseudo-terminal -> gps-agent -> local Kinesis (kinesis-mock),
# then the stream read back for about 20 seconds, showing each fix as it arrives. Stops everything it started.
# Run it with `make demo` (which installs what it needs and builds bin/gps-agent first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d)
pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "demo: no free port" >&2; return 1
}
port=$(free_port); tls_port=$(free_port)
stream=demo-positions

echo "== local Kinesis (kinesis-mock) on 127.0.0.1:$port, stream $stream"
(cd devenv/node_modules/kinesis-local && INITIALIZE_STREAMS="$stream:1" KINESIS_MOCK_PLAIN_PORT=$port \
  KINESIS_MOCK_TLS_PORT=$tls_port LOG_LEVEL=WARN exec node main.js) >"$work/kinesis.log" 2>&1 &
pids+=($!)

echo "== simulated GPS receiver (1 Hz) on a pseudo-terminal at $work/gps0"
bin/gps-agent simulate --link "$work/gps0" >"$work/simulate.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -e "$work/gps0" ] && break; sleep 0.1; done

cat >"$work/config.toml" <<TOML
truck_id = "TRUCK-DEMO-1"
status_socket = "$work/agent.sock"
[receiver]
device = "$work/gps0"
baud = 9600
[buffer]
dir = "$work/state"
[kinesis]
stream = "$stream"
region = "us-east-1"
endpoint = "http://127.0.0.1:$port"
TOML
echo "== gps-agent run --config $work/config.toml (log: agent.log)"
AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local bin/gps-agent run --config "$work/config.toml" 2>"$work/agent.log" &
pids+=($!)

echo "== reading the stream back"
if ! go run ./devenv/streamtail --endpoint "http://127.0.0.1:$port" --stream "$stream" --for 20s; then
  echo "--- agent log"; tail -n 20 "$work/agent.log"; echo "--- kinesis log"; tail -n 20 "$work/kinesis.log"
  exit 1
fi
echo "== gps-agent status"; bin/gps-agent status --config "$work/config.toml" || true
echo "== agent log (last lines)"; tail -n 5 "$work/agent.log"
