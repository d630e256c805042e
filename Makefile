# pipelines-service — see README.md.
SHELL := /usr/bin/env bash
GO ?= go
export GONOSUMDB := github.com/kcp-dev,k8s.io/kubernetes,k8s.io/mount-utils
# One build configuration for make, the stack's builds from the checkout
# and ko (which always uses -trimpath, without cgo): the product's
# dependencies then compile once into the build cache, not three times.
export GOFLAGS := -mod=readonly -buildvcs=false -trimpath
export CGO_ENABLED := 0

BIN := $(CURDIR)/bin
DEVSTACK := $(BIN)/devstack

.PHONY: all build deps generate verify-generate dev-up dev-down dev-status test unit e2e bench vet fmt

all: build

build:
	@hack/progress.sh "make build" $(GO) build -o $(BIN)/ ./cmd/...

deps:
	@hack/install-deps.sh

$(DEVSTACK): build

## dev-up: bring the local stack up (idempotent) and run a TaskRun in the demo tenant.
dev-up: deps build
	$(DEVSTACK) up
	$(DEVSTACK) demo

## dev-down: stop the stack's processes by PID, remove its mounts and bridge.
dev-down: build
	$(DEVSTACK) down

## dev-status: one KEY=VALUE line per fact.
dev-status: build
	@$(DEVSTACK) status

## test: unit tests, then e2e tests on the real stack (brought up if needed).
test: deps unit e2e

## unit: the product's unit tests, and those of our own code in third_party/
## build modules (the network policy agent's main, the S3 test service).
unit:
	@hack/progress.sh "make unit" $(GO) test -count=1 ./...
	cd third_party/kube-router && ../../hack/progress.sh "make unit (third_party/kube-router)" $(GO) test -count=1 ./cmd/...
	cd third_party/s3 && ../../hack/progress.sh "make unit (third_party/s3)" $(GO) test -count=1 ./cmd/...

## e2e: the e2e tests; E2E_PKG picks packages, E2E_COUNT runs them that many
## times in a row on one stack, E2E_RUN filters tests (go test -run). The
## stack comes up once for all packages (devstack with-stack) and goes down
## after them if it was down before. -parallel 8: go test's default is
## GOMAXPROCS (2 here), which held the examples' four lanes to two; the
## parallel tests wait on the stack, not on the CPU. hack/progress.sh says
## every 30 s that it still runs: go test prints a package's results only as
## its tests end, and the examples alone take minutes.
E2E_PKG ?= ./test/e2e/...
E2E_COUNT ?= 1
E2E_RUN ?= .
E2E_TIMEOUT ?= 80m
e2e: build
	set -o pipefail; hack/progress.sh "make e2e" $(DEVSTACK) with-stack $(GO) test -tags e2e -count=$(E2E_COUNT) -run '$(E2E_RUN)' -timeout $(E2E_TIMEOUT) -p 1 -parallel 8 -v $(E2E_PKG) 2>&1 \
	  | grep --line-buffered -v -e '^=== RUN' -e '^=== PAUSE' -e '^=== CONT'

## bench: our controller against upstream Tekton's, idle-tenant scale, stack figures (JSON report).
bench: deps build
	$(DEVSTACK) bench

## generate: APIResourceSchemas from the pinned tektoncd/pipeline and
## tektoncd/triggers releases.
generate:
	$(GO) run ./hack/schemagen

## verify-generate: fail if generated files are stale.
verify-generate: generate
	git diff --exit-code -- apis/

vet:
	$(GO) vet ./... && $(GO) vet -tags e2e ./test/...

fmt:
	gofmt -w cmd pkg test hack
