# clima — make help lists the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

GO                 ?= go
STATICCHECK        := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
TOOLS_BIN          := $(CURDIR)/.tools/bin

.PHONY: help deps build test lint proto clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## install redis-server and rabbitmq-server if missing, start RabbitMQ (idempotent)
	@scripts/deps.sh

build: ## build every function into bin/
	$(GO) build -trimpath -o bin/ ./functions/...

test: deps lint ## lint, then every test against real servers (what CI runs)
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l .); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

proto: ## regenerate events/writerpb from events/writer.proto (installs Debian's protoc if missing)
	@command -v protoc >/dev/null || scripts/apt-install.sh protobuf-compiler
	GOBIN=$(TOOLS_BIN) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(TOOLS_BIN) $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(TOOLS_BIN):$$PATH" protoc --go_out=. --go_opt=module=github.com/clima-dev/clima \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/clima-dev/clima events/writer.proto

clean: ## remove build output
	rm -rf bin .tools
