#!/usr/bin/env bash
# Installs what gps-agent's demo, tests and benchmarks need on a fresh Debian machine that has Go, node and npm:
# Debian packages (only those missing; apt-get update runs only when something is missing) and the local Kinesis
# stand-ins pinned in devenv/package.json. Safe to run again: it does nothing when all is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# command -> Debian package
declare -A want=(
  [gpsfake]=gpsd-clients
  [gpsd]=gpsd
  [socat]=socat
  [qemu-arm-static]=qemu-user-static
  [systemd-analyze]=systemd
  # the link emulator's kernel black hole (uplink/uplinktest NetNS): a network namespace and a DROP rule
  [ip]=iproute2
  [nft]=nftables
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${want[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deps: installing Debian packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # gpsd's package would start a system gpsd service; the tests start their own, so keep it from starting.
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "deps: installing local Kinesis (kinesis-local, kinesalite) with npm ci"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
