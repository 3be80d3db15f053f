#!/usr/bin/env bash
# lintian.sh DEB...: runs lintian on the packages and fails on errors (E:); warnings are printed, not fatal.
# Installs lintian with apt when it is missing (apt-get update first), as devenv/deps.sh does for other tools.
set -euo pipefail
if ! command -v lintian >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "lintian.sh: installing lintian" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
fi
# statically-linked-binary and embedded libraries are what a static Go binary is; binary-without-manpage: the
# CLI documents itself (gps-agent help).
out=$(lintian --tag-display-limit 0 --suppress-tags statically-linked-binary,binary-without-manpage "$@" 2>&1) || true
[ -z "$out" ] || printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -q '^E: '; then
  echo "lintian.sh: errors above" >&2
  exit 1
fi
