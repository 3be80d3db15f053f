#!/usr/bin/env bash
# build.sh OUTDIR ARCH...: static, stripped, reproducible gps-agent binaries, OUTDIR/linux_ARCH/gps-agent.
# ARCH is one of armv6 armv7 arm64 amd64 mipsle. Reads VERSION, COMMIT and SOURCE_DATE_EPOCH from the
# environment (cross.mk sets them); GO names the go command.
#
# Reproducible: CGO off (no host C toolchain or libc leaks in), -trimpath (no build paths), -buildid= (no
# content hash of the inputs' paths), -buildvcs=false (no VCS stamp that changes with untracked files), and the
# file's mtime set to SOURCE_DATE_EPOCH so archives made from it match too. SOURCE_DATE_EPOCH is also the binary's
# build date (main.buildEpoch): the GPS week-rollover correction counts from it (agent/rollover.go).
set -euo pipefail
out=$1
shift
: "${VERSION:?}" "${COMMIT:?}" "${SOURCE_DATE_EPOCH:?}"
GO=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
for arch in "$@"; do
  case "$arch" in
  armv6) env=(GOARCH=arm GOARM=6) ;;
  armv7) env=(GOARCH=arm GOARM=7) ;;
  arm64) env=(GOARCH=arm64) ;;
  amd64) env=(GOARCH=amd64 GOAMD64=v1) ;;
  mipsle) env=(GOARCH=mipsle GOMIPS=softfloat) ;;
  *) echo "build.sh: unknown arch $arch (want armv6 armv7 arm64 amd64 mipsle)" >&2; exit 2 ;;
  esac
  dir="$out/linux_$arch"
  mkdir -p "$dir"
  (cd "$root" && env CGO_ENABLED=0 GOOS=linux "${env[@]}" "$GO" build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$VERSION -X main.commit=$COMMIT -X main.buildEpoch=$SOURCE_DATE_EPOCH" \
    -o "$dir/gps-agent" ./agent)
  touch -h -d "@$SOURCE_DATE_EPOCH" "$dir/gps-agent"
  echo "built $dir/gps-agent ($(stat -c %s "$dir/gps-agent") bytes)"
done
