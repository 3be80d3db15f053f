#!/bin/sh
# pkgversion.sh VERSION: prints a package version dpkg and opkg accept, from `git describe` output.
#   v1.2.3              -> 1.2.3
#   v1.2.3-4-gabc1234   -> 1.2.3+4.gabc1234      (after the tag: sorts above it)
#   abc1234[-dirty]     -> 0.0.0+git.abc1234[.dirty]   (no tag yet: versions must start with a digit)
set -eu
v=${1:-dev}
v=${v#v}
case "$v" in
[0-9]*) printf '%s\n' "$v" | sed -e 's/-/+/' -e 's/-/./g' ;;
*) printf '0.0.0+git.%s\n' "$(printf '%s' "$v" | sed 's/-/./g')" ;;
esac
