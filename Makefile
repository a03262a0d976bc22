# hardened: make targets are the interface. `make help` lists them.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export GOFLAGS := -buildvcs=false

GO        ?= go
BIN       := bin
PURE      := ./spec/... ./profiles/... ./policy/...
UNIT      := $(PURE) ./cmd/... ./shim/... ./verify/... ./deploy/... ./internal/... ./observe/...
COVER_MIN := 85
FUZZTIME  ?= 10m
SOAK_N    ?= 1000

.PHONY: help build test test-unit test-integration coverage lint bench demo tools fuzz soak clean conformance e2e-kubernetes

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

build: ## build the shim, its signature verifier, the pull-time gate and hardenctl into bin/
	$(GO) build -o $(BIN)/ ./cmd/containerd-shim-hardened-v2 ./cmd/hardened-verify ./cmd/hardened-image-verifier ./cmd/hardenctl

tools: ## install apt packages and build pinned containerd v2.4.2 / runc v1.5.2 into .tools/bin
	@bash scripts/tools.sh

test: tools test-unit test-integration coverage ## everything CI runs: tools, unit and integration tests, coverage

test-unit: ## unit tests with coverage of the pure core
	$(GO) test -count=1 -coverprofile=coverage.unit.out -coverpkg=$(subst $(space),$(comma),$(PURE)) $(UNIT)

test-integration: ## end-to-end tests on a private containerd + runc (root)
	$(GO) test -count=1 -timeout 25m -v ./integration/... 2>&1 | tee integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|harness:' ; exit $${PIPESTATUS[0]}

coverage: ## print coverage of spec/, profiles/, policy/ (fails under 85%)
	@bash scripts/coverage.sh coverage.unit.out $(COVER_MIN)

lint: ## gofmt, go vet, go mod tidy check
	@out=$$(gofmt -l . | grep -v '^_gen/'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/hardened.go.mod.bak; cp go.sum /tmp/hardened.go.sum.bak; $(GO) mod tidy; \
	  if ! diff -q go.mod /tmp/hardened.go.mod.bak >/dev/null || ! diff -q go.sum /tmp/hardened.go.sum.bak >/dev/null; then \
	    echo "go mod tidy changed go.mod/go.sum: commit the result"; exit 1; fi

bench: tools ## plain runc vs hardened on a private containerd, as ratios (bench/results/bench.{md,json})
	@HARDENED_BENCH=1 $(GO) test -count=1 -v -timeout 30m -run '^TestBench$$' ./integration/ 2>&1 | grep -vE '^(=== RUN|--- PASS|PASS|ok |time=)'; exit $${PIPESTATUS[0]}
	@echo "seeing what it denies: the cost of logging denials and of the node's observer (bench/results/observe.md):"
	@HARDENED_BENCH=1 $(GO) test -count=1 -v -timeout 30m -run '^TestBenchObserve$$' ./integration/ 2>&1 | grep -vE '^(=== RUN|--- PASS|PASS|ok |time=)'; exit $${PIPESTATUS[0]}
	@echo "signature verification (registry on loopback; targets: cold ≤ 50 ms, with attestations ≤ 80 ms, warm ≤ 1 ms):"
	@$(GO) test -count=1 -run XXX -bench '^BenchmarkVerify$$' -benchtime 50x ./verify/ | grep -E '^Benchmark'

demo: tools ## private containerd: a sample container with runc, then hardened (ctr, then crictl): before/after
	@bash scripts/cri-tools.sh crictl >/dev/null
	@HARDENED_DEMO=1 $(GO) test -count=1 -v -run '^TestDemo$$' ./integration/ 2>&1 | grep -vE '^(=== RUN|--- PASS|PASS|ok |time=)'; exit $${PIPESTATUS[0]}

conformance: tools ## critest (cri-tools v1.37.0) against a private containerd: runc, hardened, hardened in audit mode (1-2 h)
	@bash scripts/cri-tools.sh && bash scripts/e2e-tools.sh
	$(GO) test -c -o $(BIN)/conformance.test ./e2e/conformance/
	cd e2e/conformance && HARDENED_CONFORMANCE=1 ../../scripts/netns-run.sh ../../$(BIN)/conformance.test -test.count=1 -test.v -test.timeout 8h -test.run '^TestConformance$$' 2>&1 | grep -vE '^time='; exit $${PIPESTATUS[0]}

e2e-kubernetes: tools ## a real single-node cluster (kubelet v1.37.2) on a private containerd: pods on RuntimeClass hardened
	@bash scripts/k8s-tools.sh && bash scripts/e2e-tools.sh
	$(GO) test -c -o $(BIN)/e2e-kubernetes.test ./e2e/kubernetes/
	cd e2e/kubernetes && HARDENED_E2E_KUBERNETES=1 HARDENED_PRIVATE_DIRS="/var/lib/kubelet /var/log/pods" ../../scripts/netns-run.sh ../../$(BIN)/e2e-kubernetes.test -test.count=1 -test.v -test.timeout 60m -test.run '^TestKubernetes$$' 2>&1 | grep -vE '^time='; exit $${PIPESTATUS[0]}

fuzz: ## fuzz the engine, its seccomp judgement, the policy parser and the reference parser against distribution/reference (FUZZTIME=10m each; CI runs the seed corpus in make test)
	$(GO) test -run XXX -fuzz '^FuzzHarden$$' -fuzztime $(FUZZTIME) ./spec/
	$(GO) test -run XXX -fuzz '^FuzzSeccomp$$' -fuzztime $(FUZZTIME) ./spec/
	$(GO) test -run XXX -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./policy/
	$(GO) test -run XXX -fuzz '^FuzzImageRefDifferential$$' -fuzztime $(FUZZTIME) ./policy/

soak: tools ## create and remove $(SOAK_N) hardened containers from 8 workers, then check for leaks
	@LOAD_N=$(SOAK_N) $(GO) test -count=1 -v -timeout 120m -run '^TestLoad$$' ./integration/ 2>&1 | grep -vE '^time='; exit $${PIPESTATUS[0]}

clean: ## remove build output
	rm -rf $(BIN) coverage.*.out integration.log

comma := ,
space := $(empty) $(empty)
