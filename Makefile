# gps-agent. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The build's time: the last commit's, so a rebuild of the same commit gives the same bytes. Every timestamp in
# packages is this (cross/cross.mk), and the binary takes it as its build date: the GPS week-rollover correction
# moves no date forward that is after it (agent/rollover.go). 0 (no git) makes the binary use its fallback date.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildEpoch=$(SOURCE_DATE_EPOCH)
# -race finds what the receiver, buffer and uplink goroutines share. -p 1: one package at a time, so the
# end-to-end tests (real processes, real timing) never share the 2 CI cores with another package's builds.
TESTFLAGS ?= -race -count=1 -p 1 -timeout 14m

.PHONY: help deps build test demo bench fleet fuzz cuts clean

include cross/cross.mk

help:
	@echo "make demo    simulated receiver -> agent -> emulated LTE link with a 15 s dead zone -> local Kinesis (about a minute)"
	@echo "make test    every test (installs what tests need first)"
	@echo "make build   bin/gps-agent"
	@echo "make bench   figures beside their targets, written to bench.json"
	@echo "make fleet   30 agents on one shard and 100 on four, back from a shared outage, drawn in docs/ (about 7 min)"
	@echo "make deps    install Debian packages and local Kinesis (npm) the demo and tests use"
	@echo "make fuzz    each fuzz target for 60 s (FUZZTIME=60s)"
	@echo "make cuts    100 power cuts on the power-cut filesystem (CUTS=100; needs root and /dev/fuse)"
	@echo "make cross   static binaries for armv6, armv7, arm64, amd64, mipsle in dist/"
	@echo "make package .deb, .ipk and .tar.gz per arch in dist/"
	@echo "make test-arm  unit tests under qemu for armv6 and arm64"

deps:
	@bash devenv/deps.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gps-agent ./agent

test: deps build
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(TESTFLAGS) ./...

demo: deps build
	@bash devenv/demo.sh

# Figures the issues name, each printed beside its target, all written to bench.json so runs compare.
bench: deps build
	@rm -f bench.jsonl
	GPS_AGENT_BENCH_OUT=$(CURDIR)/bench.jsonl $(GO) test -count=1 -p 1 -timeout 20m -run '^TestBench' ./...
	@$(GO) run ./internal/benchfig/report bench.jsonl bench.json

# A fleet's drain, drawn (issue 15): real agents, each with an hour of 1 Hz fixes buffered, behind a shard-limited
# local Kinesis, all offline for the same 60 s and back at once, default settings. FLEET_ONE and FLEET_MANY are
# trucks x shards x fixes x outage. Figures beside their targets in fleet.json; pictures in docs/.
FLEET_ONE ?= 30x1x3600x60s
FLEET_MANY ?= 100x4x3600x60s
fleet: deps build
	@rm -f fleet.jsonl
	GPS_AGENT_FLEET=$(FLEET_ONE) GPS_AGENT_FLEET_SVG=$(CURDIR)/docs/fleet-drain.svg GPS_AGENT_BENCH_OUT=$(CURDIR)/fleet.jsonl \
	  $(GO) test -count=1 -timeout 30m -run '^TestBenchFleet$$' -v ./agent
	GPS_AGENT_FLEET=$(FLEET_MANY) GPS_AGENT_FLEET_SVG=$(CURDIR)/docs/fleet-drain-4-shards.svg GPS_AGENT_BENCH_OUT=$(CURDIR)/fleet.jsonl \
	  $(GO) test -count=1 -timeout 40m -run '^TestBenchFleet$$' -v ./agent
	@$(GO) run ./internal/benchfig/report fleet.jsonl fleet.json

# Each fuzz target for FUZZTIME; what they find lands in the package's testdata/fuzz and stays a test case.
FUZZTIME ?= 60s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Power cuts on the power-cut filesystem (internal/cutfs), CUTS of each kind: the buffer run by a child process
# over six scenarios (buffer/powercuts_test.go), and the agent itself recording and draining
# (agent/powercut_test.go). make test runs 10 and 6 of them.
CUTS ?= 100
cuts: deps
	set -o pipefail; GPS_AGENT_CUTS=$(CUTS) $(GO) test -count=1 -p 1 -timeout 40m -run '^(TestPowerCuts|TestPowerCutRestarts)$$' -v ./buffer ./agent 2>&1 | grep -v '^=== '

clean:
	rm -rf bin dist bench.jsonl bench.json fleet.jsonl fleet.json
