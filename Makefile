# snapferry build, test, demo and benchmark entry points. See README.md.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKGS    := ./...

.PHONY: build test demo bench lint fuzz esxi-check clean

# build: linux/amd64 with the epoll overlay (runs on ESXi), linux/arm64 stock; fails over 22 MiB (docs/esxi.md);
# and dist/snapferry-VIBVERSION.vib, the linux/amd64 binary packaged for ESXi 8 (docs/esxi.md).
build:
	GO='$(GO)' scripts/build.sh -o dist -v '$(VERSION)' -V linux-amd64 linux-arm64

# test: the Go tests, the install script under busybox, the VIB (built twice, checked with ar, tar
# and python3), the overlay generator, and the ESXi
# syscall profile (esxi-check skips without strace, and fails instead when CI is set).
test:
	$(GO) test -count=1 -timeout 40m $(PKGS)
	sh scripts/test-install-esxi.sh
	GO='$(GO)' scripts/test-vib.sh
	scripts/test-overlay-epoll.sh
	GO='$(GO)' scripts/esxi-check.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# demo: the main job on an embedded default (a simulated ESXi host with a running VM: hot backup,
# incremental, check, restore as a new VM), then a disk image and a folder; fresh temp folders.
demo: build
	scripts/demo/vm.sh
	scripts/demo/files.sh

# bench: snapferry vs borg/restic/rsync, see docs/benchmarks.md. BENCH_SIZE=small for a quick run.
bench: build
	scripts/bench/run.sh

# fuzz: every FuzzXxx target in the module, one at a time, for FUZZTIME each (default 10s).
# FUZZ_PKGS narrows the packages (e.g. FUZZ_PKGS=./images/repo). Findings are written to the
# package's testdata/fuzz/ folder: commit them with the fix, they stay as regression seeds.
FUZZTIME  ?= 10s
FUZZ_PKGS ?= .
fuzz:
	@set -e; n=0; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' $(FUZZ_PKGS) | sort); do \
	  dir=./$$(dirname $${f#./}); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$dir $$t ($(FUZZTIME))"; n=$$((n+1)); \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done; echo "fuzz: $$n targets passed"

# esxi-check: the stock binary fails and the overlay binary works under scripts/esxi-profile.sh.
esxi-check:
	GO='$(GO)' scripts/esxi-check.sh

clean:
	rm -rf dist bench-out
