# Firmware builds: static, reproducible binaries and packages for the gateways, and the unit tests under ARM
# emulation. Included from the top Makefile (`include cross/cross.mk`), so paths are from the repository root
# and VERSION, COMMIT, GO and SOURCE_DATE_EPOCH come from there.
#
#   make cross      dist/linux_{armv6,armv7,arm64,amd64,mipsle}/gps-agent
#   make package    dist/gps-agent_VERSION_ARCH.{deb,ipk} and dist/gps-agent_VERSION_linux_ARCH.tar.gz
#   make test-arm   every package's unit tests under qemu-user-static, armv6 and arm64
#   make lint-deb   lintian on the .debs (installs lintian when missing)

CROSS_ARCHES ?= armv6 armv7 arm64 amd64 mipsle
DIST ?= dist
# SOURCE_DATE_EPOCH (top Makefile) is every timestamp in binaries' files and packages, and the binaries' build
# date. Default: the last commit's time, so a rebuild of the same commit, on any machine and any day, gives the
# same bytes.
NFPM := bin/nfpm

.PHONY: cross package test-arm lint-deb

cross:
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' bash cross/build.sh $(DIST) $(CROSS_ARCHES)

# nfpm is pinned in cross/tools/go.mod (not the agent's go.mod) and built once; it is rebuilt when the pin moves.
$(NFPM): cross/tools/go.mod cross/tools/go.sum
	cd cross/tools && CGO_ENABLED=0 $(GO) build -trimpath -o ../../$(NFPM) github.com/goreleaser/nfpm/v2/cmd/nfpm

package: cross $(NFPM)
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' NFPM='$(CURDIR)/$(NFPM)' bash cross/package.sh $(DIST) $(CROSS_ARCHES)

lint-deb: package
	@bash cross/lintian.sh $(DIST)/*.deb

# Unit tests under qemu-user-static. 32-bit ARM catches 64-bit atomics on unaligned fields and mmap sizes that
# do not fit a 32-bit address space (bbolt); arm64 is what most new gateways run. No -race: the race detector
# exists only for amd64/arm64 hosts, not under emulation. The cross/ tests build with the host toolchain and are
# not run here.
#
# Skipped under emulation, unless binfmt_misc runs ARM binaries through qemu (then nothing is skipped); each
# runs on amd64 in `make test`. All re-exec their own test binary, which under qemu-user is an ARM binary the
# host kernel can exec only when binfmt_misc hands it to qemu (CI machines and containers usually lack it):
#   agent:  TestEndToEnd, TestOutageAcrossRestart, TestRunErrors, TestSystemdNotify (startAgent runs
#           os.Executable() as the agent); TestBenchEpochToKinesis likewise (a `make bench` figure).
#   buffer: TestCrashKill9 (the test binary is the child it kills).
#   uplink: TestHTTPProxyFromEnvironment (re-runs os.Args[0] with proxy variables set).
# A new test that re-execs itself must be added here, or skip itself when GPS_AGENT_TEST_EMULATED is set.
# Tests that start node (kinesis-mock, kinesalite) do run: qemu-user hands the exec of a host binary to the kernel.
TEST_ARM_REEXEC_SKIP := ^(TestEndToEnd|TestOutageAcrossRestart|TestRunErrors|TestSystemdNotify|TestBenchEpochToKinesis|TestCrashKill9|TestHTTPProxyFromEnvironment)$$
# internal/cutfs (the power-cut filesystem) is FUSE on the test host, built for linux amd64 and arm64 only: go-fuse
# does not build on 32-bit ARM, and FUSE tests skip under qemu anyway.
TEST_ARM_PKGS ?= $(shell $(GO) list ./... | grep -v -e /cross -e /devenv -e /internal/benchfig/report -e /internal/cutfs)
# -trimpath shares compiled packages with `make cross` in the build cache.
TEST_ARM_FLAGS ?= -count=1 -timeout 10m -trimpath

test-arm: deps
	@command -v qemu-arm-static >/dev/null || { echo "test-arm: qemu-user-static missing: make deps"; exit 1; }
	@set -e; for a in armv6 arm64; do \
	  case $$a in \
	  armv6) env="GOARCH=arm GOARM=6"; q=qemu-arm-static; fmt=qemu-arm;; \
	  arm64) env="GOARCH=arm64"; q=qemu-aarch64-static; fmt=qemu-aarch64;; \
	  esac; \
	  skip='$(TEST_ARM_REEXEC_SKIP)'; [ -e /proc/sys/fs/binfmt_misc/$$fmt ] && skip='^$$'; \
	  echo "test-arm: $$a under $$q (skipping $$skip)"; start=$$(date +%s); \
	  env CGO_ENABLED=0 GPS_AGENT_TEST_EMULATED=$$q $$env $(GO) test $(TEST_ARM_FLAGS) -exec $$q -skip "$$skip" $(TEST_ARM_PKGS); \
	  echo "test-arm: $$a passed in $$(( $$(date +%s) - start )) s"; \
	done
