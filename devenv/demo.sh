#!/usr/bin/env bash
# The demo: what gps-agent is for, in about a minute. A simulated receiver on a pseudo-terminal -> gps-agent ->
# an emulated LTE link (uplink/uplinktest's link emulator) -> local Kinesis (kinesis-mock). The truck drives into a
# dead zone: the link is cut for 15 s while it keeps recording (local Kinesis keeps its stream); `gps-agent
# status` shows the backlog grow; the link comes back, the live fix arrives first and the backlog after it, each
# row marked live or backfilled; at the end, every seq arrived and none was lost.
# Run it with `make demo` (which installs what it needs and builds bin/gps-agent first). Stops all it started.
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
# wait_for WHAT TEST...: runs TEST every 0.1 s until it succeeds, for at most 60 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $what did not come up; logs in $work" >&2; tail -n 20 "$work"/*.log >&2; return 1
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pending() { bin/gps-agent status --config "$work/config.toml" 2>/dev/null | sed -n 's/^ *buffer *\([0-9]*\) fixes pending.*/\1/p'; }
show_buffer() { bin/gps-agent status --config "$work/config.toml" 2>/dev/null | grep -E '^ *(buffer|uplink) ' | sed 's/^/    status: /' || true; }

port=$(free_port); tls_port=$(free_port); link_port=$(free_port)
stream=demo-positions
go build -o "$work/linkemu" ./uplink/uplinktest/cmd/linkemu
go build -o "$work/streamtail" ./devenv/streamtail

echo "== local Kinesis (kinesis-mock) on 127.0.0.1:$port, stream $stream"
(cd devenv/node_modules/kinesis-local && INITIALIZE_STREAMS="$stream:1" KINESIS_MOCK_PLAIN_PORT=$port \
  KINESIS_MOCK_TLS_PORT=$tls_port LOG_LEVEL=WARN exec node main.js) >"$work/kinesis.log" 2>&1 &
pids+=($!)
wait_for "local Kinesis" listening "$port"

echo "== an LTE link (60 ms round trip, 5 Mbit/s up) on 127.0.0.1:$link_port in front of it"
mkfifo "$work/link.ctl"
"$work/linkemu" --listen "127.0.0.1:$link_port" --upstream "http://127.0.0.1:$port" --profile lte \
  <"$work/link.ctl" >"$work/link.log" 2>&1 &
pids+=($!)
exec 7>"$work/link.ctl" # the emulator's control: "hole" cuts the link, "up" brings it back
wait_for "the link emulator" grep -q "listening" "$work/link.log"

echo "== simulated GPS receiver (1 Hz) on a pseudo-terminal at $work/gps0"
bin/gps-agent simulate --link "$work/gps0" >"$work/simulate.log" 2>&1 &
sim=$!
pids+=($sim)
wait_for "the simulated receiver" test -e "$work/gps0"

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
endpoint = "http://127.0.0.1:$link_port"
[uplink]
backfill_delay = "0s"   # one truck: no fleet to spread out
TOML
echo "== gps-agent run --config $work/config.toml (log: agent.log)"
AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local bin/gps-agent run --config "$work/config.toml" 2>"$work/agent.log" &
pids+=($!)

echo "== reading the stream back (each row: live = reached Kinesis within 3 s of its fix)"
"$work/streamtail" --endpoint "http://127.0.0.1:$port" --stream "$stream" --for 10m --complete &
tail_pid=$!
pids+=($tail_pid)

sleep 10
echo
echo "== the truck drives into a dead zone: the link is cut for 15 s (nothing answers); it keeps recording"
echo hole >&7
for _ in 1 2 3; do sleep 5; show_buffer; done
echo
echo "== the link is back: the newest fix goes out first, then the backlog"
echo up >&7
sleep 12

echo
echo "== the receiver stops; waiting for the last fixes to go out"
kill "$sim" 2>/dev/null || true
for _ in $(seq 300); do [ "$(pending)" = "0" ] && break; sleep 0.1; done
sleep 2 # the last records reach the reader
kill -TERM "$tail_pid"
status=0
wait "$tail_pid" || status=$?
echo
echo "== gps-agent status"; bin/gps-agent status --config "$work/config.toml" || true
if [ "$status" -ne 0 ]; then
  echo "demo: fixes were lost; agent log:"; tail -n 20 "$work/agent.log"
  exit 1
fi
echo
echo "== every seq arrived, 0 lost"
