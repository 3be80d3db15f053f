#!/usr/bin/env bash
# package.sh DIST ARCH...: from DIST/linux_ARCH/gps-agent (made by build.sh), writes into DIST
#   gps-agent_VERSION_ARCH.deb          Debian/Raspberry Pi OS: binary, systemd unit, udev rule, conffile, user
#   gps-agent_VERSION_ARCH.ipk          OpenWrt: binary, procd init script, conffile, user
#   gps-agent_VERSION_linux_ARCH.tar.gz the same files for images built by other means
# Reads VERSION and SOURCE_DATE_EPOCH from the environment; NFPM names the nfpm binary (cross.mk builds it).
# Every timestamp is SOURCE_DATE_EPOCH and every owner root, so the same inputs give the same bytes.
set -euo pipefail
dist=$(cd "$1" && pwd)
shift
: "${VERSION:?}" "${SOURCE_DATE_EPOCH:?}"
root=$(cd "$(dirname "$0")/.." && pwd)
NFPM=${NFPM:-$root/bin/nfpm}
PKG_VERSION=$(sh "$root/cross/pkgversion.sh" "$VERSION")
export PKG_VERSION SOURCE_DATE_EPOCH

# Debian arch and OpenWrt arch of each build. A GOARM=6 binary runs on every ARMv6+ with VFP: Raspberry Pi OS
# calls that armhf. OpenWrt names arches by CPU; these are the common ones (override with IPK_ARCH_<arch>).
declare -A deb_arch=([armv6]=armhf [armv7]=armhf [arm64]=arm64 [amd64]=amd64 [mipsle]=mipsel)
declare -A ipk_arch=(
  [armv6]=${IPK_ARCH_armv6:-arm_arm1176jzf-s_vfp}
  [armv7]=${IPK_ARCH_armv7:-arm_cortex-a7_neon-vfpv4}
  [arm64]=${IPK_ARCH_arm64:-aarch64_generic}
  [amd64]=${IPK_ARCH_amd64:-x86_64}
  [mipsle]=${IPK_ARCH_mipsle:-mipsel_24kc}
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# changelog.gz for the .deb (lintian requires one): one entry for this build, dated SOURCE_DATE_EPOCH.
CHANGELOG=$work/changelog.gz
{
  printf 'gps-agent (%s) unstable; urgency=medium\n\n' "$PKG_VERSION"
  printf '  * Build of gps-agent %s (commit %s).\n\n' "$VERSION" "${COMMIT:-unknown}"
  printf ' -- FleetEdge firmware team <firmware@fleetedge.example>  %s\n' \
    "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -n -9 >"$CHANGELOG"
touch -d "@$SOURCE_DATE_EPOCH" "$CHANGELOG"
export CHANGELOG

tarball() { # tarball DIR OUT: a deterministic .tar.gz of DIR
  local dir=$1 out=$2
  tar -C "$(dirname "$dir")" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' --format=gnu -cf - "$(basename "$dir")" | gzip -n -9 >"$out"
}

cd "$root"
for arch in "$@"; do
  export BIN=$dist/linux_$arch/gps-agent
  [ -x "$BIN" ] || { echo "package.sh: $BIN missing: run build.sh first" >&2; exit 1; }
  base=gps-agent_${PKG_VERSION}_$arch

  NFPM_ARCH=${deb_arch[$arch]} "$NFPM" package --config cross/nfpm.yaml --packager deb --target "$dist/$base.deb" >/dev/null
  NFPM_ARCH=${ipk_arch[$arch]} "$NFPM" package --config cross/nfpm.yaml --packager ipk --target "$dist/$base.ipk" >/dev/null

  tdir=$work/gps-agent_${PKG_VERSION}_linux_$arch
  mkdir -p "$tdir/systemd"
  install -m 0755 "$BIN" "$tdir/gps-agent"
  install -m 0644 systemd/gps-agent.service systemd/99-gps-agent.rules systemd/config.example.toml "$tdir/systemd/"
  tarball "$tdir" "$dist/gps-agent_${PKG_VERSION}_linux_$arch.tar.gz"

  echo "packaged $dist/$base.deb $dist/$base.ipk $dist/gps-agent_${PKG_VERSION}_linux_$arch.tar.gz"
done
