# crmlink: build, test and the test rig (a real Asterisk 22 and a real Redis on loopback).
#   make test          go vet + unit tests + fuzz + end-to-end tests against the rig (brings it up)
#   make fuzz          every fuzz target for FUZZTIME (10s) each
#   make test-cluster  the multi-host test: deploy/cluster/compose.yaml (2 Asterisks, 2 crmlink,
#                      HAProxy, 3 Redis + 3 Sentinels) broken part by part (test/cluster)
#   make sandbox-up    start Asterisk 22 (Docker, or chroot without Docker) and Redis
#   make sandbox-down  stop both; nothing is left running
#   make build         binaries into bin/

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Everything that places calls through the rig (e2e tests, benchmarks, the demo) holds this
# lock: one Asterisk, one Stasis application name, fixed phone ports.
RIG_LOCK ?= /tmp/crmlink-rig.lock

# The rig's addresses, for the tests.
export CRMLINK_TEST_REDIS ?= 127.0.0.1:6390
export CRMLINK_TEST_ARI   ?= http://127.0.0.1:8088/ari

.PHONY: all build test vet unit fuzz e2e test-cluster sandbox-up sandbox-down sandbox-status fmt-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o bin/crmlink ./cmd/crmlink
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o bin/amocrm-sandbox ./cmd/amocrm-sandbox

test: vet fmt-check sandbox-up unit fuzz e2e

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Unit tests (they use the rig's Redis where they need a real one). The multi-host test has a
# target of its own.
unit:
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e /test/e2e -e /test/cluster)

# Every fuzz target of the repository, found by name (a new `func FuzzX` in a _test.go is
# run without editing this file), each for FUZZTIME, so a parser that starts panicking on
# odd input fails CI. go test takes one -fuzz target and one package at a time. A failing
# input is kept under the package's testdata/fuzz/ and replayed by every later `go test`.
FUZZTIME ?= 10s
fuzz:
	@set -e; n=0; \
	for f in $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "fuzz: $$name in ./$$(dirname "$$f") for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) "./$$(dirname "$$f")"; \
			n=$$((n + 1)); \
		done; \
	done; \
	echo "fuzz: $$n targets passed"

# End-to-end tests: real SIP calls through the rig's Asterisk. Verbose so each test's PASS
# line shows; the rig is required, a missing one fails instead of skipping.
e2e:
	CRMLINK_TEST_RIG=required flock $(RIG_LOCK) $(GO) test -count=1 -p 1 -v -timeout 20m ./test/e2e/...

sandbox-up:
	docker/rig.sh up

sandbox-down:
	docker/rig.sh down

sandbox-status:
	docker/rig.sh status

clean:
	rm -rf bin

# Benchmarks (issue 7): call setup through crmlink (ARI, FastAGI, SIP redirect; owner
# cached, indexed by a webhook, cold) against Asterisk's own static Dial(), with sipp
# through the rig. Writes results/bench.md, results/bench.json, results/bench-latency.svg
# (raw sipp output in results/bench-raw/). About 10 minutes; BENCH_QUICK=1 runs a shorter
# set in under 3. The driver holds $(RIG_LOCK) for each stretch of calls, not for the run,
# and (-own-conf) restarts the rig's Asterisk with this checkout's asterisk-conf/ inside a
# stretch when it reads another's (a rig shared with other checkouts).
BENCH_QUICK ?=
.PHONY: bench
bench: build
	@command -v sipp >/dev/null 2>&1 || { echo "bench: installing sip-tester (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester >/dev/null; }
	docker/rig.sh up
	$(GO) run ./bench/cmd/crmlink-bench -lock $(RIG_LOCK) -own-conf -out results $(if $(BENCH_QUICK),-quick)

# ---------------------------------------------------------------------------------------
# Quickstart and packaging (docs/quickstart.md, docs/deploy.md).
#   make demo          crmlink routing real calls: rig + amoCRM sandbox + crmlink + SIP calls,
#                      a table of what happened; exit 1 when a scenario misbehaves
#   make images        the Docker images (docker/images.sh: registry base or the rootfs)
#   make compose-test  the Compose stack up, one routed call through it, down
.PHONY: demo images compose-test

# The demo places its calls under $(RIG_LOCK) and leaves the rig running, as sandbox-up does
# (make demo DEMO_FLAGS=--stop-rig stops a rig the demo itself started).
demo: build
	CRMLINK_RIG_LOCK=$(RIG_LOCK) $(GO) run ./demo $(DEMO_FLAGS)

images:
	docker/images.sh

# The multi-host test (docs/deploy.md, "Running more than one"): Docker networks and
# addresses of its own (172.31.19-21.0/24), containers and images named crmlink-cluster-*, so
# it runs beside the rig without its lock. About 6 minutes; .ci/run runs it after make test.
test-cluster:
	CRMLINK_CLUSTER_TEST=required $(GO) test -count=1 -v -timeout 30m ./test/cluster/...

# Its own ports (docs/deploy.md): it runs beside the rig; it takes $(RIG_LOCK) only for its call.
compose-test:
	CRMLINK_RIG_LOCK=$(RIG_LOCK) CRMLINK_COMPOSE_TEST=required $(GO) test -count=1 -v -timeout 15m ./test/compose/...

# The amoCRM widget as amoCRM's upload takes it: widget.zip with manifest.json at the
# archive's root (deploy/amocrm-widget/README.md).
widget:
	@mkdir -p bin && rm -f bin/widget.zip
	cd deploy/amocrm-widget && zip -q -X -r ../../bin/widget.zip manifest.json script.js i18n images
	@echo bin/widget.zip
.PHONY: widget
