# snapferry build, test, demo and benchmark entry points. See README.md.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS    := ./...

.PHONY: build test demo bench lint fuzz esxi-check clean

build:
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/snapferry-linux-amd64 ./cmd/snapferry
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/snapferry-linux-arm64 ./cmd/snapferry
	@ls -l dist/

test:
	$(GO) test -count=1 -timeout 40m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

demo:
	@echo "make demo: not built yet"; exit 1

bench:
	@echo "make bench: not built yet"; exit 1

clean:
	rm -rf dist bench-out
