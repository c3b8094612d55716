# wharfd — build, run, test, graph, bench, lint.
# The build tags are set once, here, and reach every go command through
# GOFLAGS (the e2e tests build the daemon with the same tags).
TAGS    := containers_image_openpgp,exclude_graphdriver_btrfs,seccomp
export GOFLAGS := -tags=$(TAGS) -buildvcs=false
GO      ?= go
BIN     := bin/wharfd
VERSION ?= 0.1.0-dev
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/wharfd/wharfd/version.Version=$(VERSION) \
           -X github.com/wharfd/wharfd/version.GitCommit=$(COMMIT) \
           -X github.com/wharfd/wharfd/version.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# make run keeps everything under .run/ in the project.
RUN     := $(CURDIR)/.run
SOCK    := $(RUN)/wharfd.sock
# Packages whose concurrency is worth the race detector's cost.
RACE_PKGS := ./pipeline/... ./graphviz/... ./modules/config/... ./modules/events/... ./modules/host/... ./modules/apiserver

# Debian packages the build and the tests need: libseccomp-dev, pkg-config
# and gcc for libcontainer's cgo parts; busybox-static (test images),
# docker-registry (registry tests), tini (--init), graphviz (make graph),
# iptables and iproute2. `make deps` installs the missing ones (as root), so
# `make run` and `make test` work on a fresh machine.
DEB_PKGS := libseccomp-dev pkg-config gcc busybox-static docker-registry tini graphviz iptables iproute2

.PHONY: deps build run test test-race graph bench lint clean

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wharfd

run: build
	@mkdir -p $(RUN)
	@test -f $(RUN)/daemon.json || echo '{}' > $(RUN)/daemon.json
	@echo "wharfd: data root $(RUN)/data, socket $(SOCK)"
	@echo "in another shell:  export DOCKER_HOST=unix://$(SOCK)"
	$(BIN) --config-file $(RUN)/daemon.json --data-root $(RUN)/data --exec-root $(RUN)/exec \
		--pidfile $(RUN)/wharfd.pid -H unix://$(SOCK) $(ARGS)

test: deps lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

graph: build
	@mkdir -p $(RUN); test -f $(RUN)/daemon.json || echo "{}" > $(RUN)/daemon.json
	$(BIN) --config-file $(RUN)/daemon.json --dump-graph > boot.dot
	@if command -v dot >/dev/null; then dot -Tsvg boot.dot > boot.svg && echo "wrote boot.svg"; \
	else echo "graphviz 'dot' not installed: wrote boot.dot only"; fi

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 20x ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin boot.dot boot.svg
