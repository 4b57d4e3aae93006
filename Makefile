# clima — make help lists the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

GO                 ?= go
STATICCHECK        := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
TOOLS_BIN          := $(CURDIR)/.tools/bin
KO                 := KO_CONFIG_PATH=$(CURDIR)/ko.yaml $(GO) run github.com/google/ko@v0.19.1
KUBECTL            ?= kubectl
HELM               ?= helm

# The platform clima runs on, pinned (make cluster-deps installs it).
KNATIVE_VERSION           := 1.20.0
STRIMZI_VERSION           := 0.48.0
CERT_MANAGER_VERSION      := v1.19.1
RABBITMQ_OPERATOR_VERSION := v2.16.0
TOPOLOGY_OPERATOR_VERSION := v1.17.4
GRAFANA_CHART_VERSION     := 10.1.4
GH                        := https://github.com

FUZZTIME           ?= 30s

.PHONY: help deps build run stats load bench screenshot test fuzz lint proto clean cluster-deps secrets images deploy undeploy

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

deps: ## install redis-server, rabbitmq-server, Locust and Chromium if missing, start RabbitMQ (idempotent)
	@scripts/deps.sh

build: ## build every function and the clima command into bin/
	$(GO) build -trimpath -o bin/ ./functions/... ./cmd/clima

run: deps ## run the whole pipeline on this machine (clima dev); Ctrl-C stops everything
	$(GO) build -o bin/clima ./cmd/clima
	bin/clima dev $(ARGS)

stats: ## show Redis and Valkey side by side (of a running make run)
	$(GO) run ./cmd/clima stats

load: deps ## Locust headless against a running make run (10 users, 10,000 requests), then check the stores (ARGS)
	$(GO) build -o bin/clima ./cmd/clima
	bin/clima load $(ARGS)

bench: ## measure a running make run end to end: rate, latency, bare-hop ratio (ARGS)
	$(GO) build -o bin/clima ./cmd/clima
	bin/clima bench $(ARGS)

screenshot: load ## after make load against a running make run, a picture of its dashboard into docs/dashboard.png
	bin/clima screenshot -o docs/dashboard.png

test: deps lint ## lint, then every test against real servers (what CI runs)
	$(GO) test -count=1 -timeout 30m ./...

fuzz: ## fuzz every decoder of outside input for FUZZTIME each (make test replays the corpora)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSubmissions$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReports$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzCloudEvents$$' -fuzztime $(FUZZTIME) ./internal/serving

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

cluster-deps: ## install Knative (Kourier), Kafka broker and source, Strimzi, cert-manager, RabbitMQ operators and source
	$(KUBECTL) apply -f $(GH)/knative/serving/releases/download/knative-v$(KNATIVE_VERSION)/serving-crds.yaml
	$(KUBECTL) apply -f $(GH)/knative/serving/releases/download/knative-v$(KNATIVE_VERSION)/serving-core.yaml
	$(KUBECTL) apply -f $(GH)/knative-extensions/net-kourier/releases/download/knative-v$(KNATIVE_VERSION)/kourier.yaml
	$(KUBECTL) patch configmap/config-network -n knative-serving --type merge \
	  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
	$(KUBECTL) apply -f $(GH)/knative/eventing/releases/download/knative-v$(KNATIVE_VERSION)/eventing-crds.yaml
	$(KUBECTL) apply -f $(GH)/knative/eventing/releases/download/knative-v$(KNATIVE_VERSION)/eventing-core.yaml
	$(KUBECTL) apply -f $(GH)/knative-extensions/eventing-kafka-broker/releases/download/knative-v$(KNATIVE_VERSION)/eventing-kafka-controller.yaml
	$(KUBECTL) apply -f $(GH)/knative-extensions/eventing-kafka-broker/releases/download/knative-v$(KNATIVE_VERSION)/eventing-kafka-broker.yaml
	$(KUBECTL) apply -f $(GH)/knative-extensions/eventing-kafka-broker/releases/download/knative-v$(KNATIVE_VERSION)/eventing-kafka-source.yaml
	KUBECTL=$(KUBECTL) scripts/kafka-broker-limits.sh
	$(KUBECTL) create namespace kafka --dry-run=client -o yaml | $(KUBECTL) apply -f -
	curl -fsSL $(GH)/strimzi/strimzi-kafka-operator/releases/download/$(STRIMZI_VERSION)/strimzi-cluster-operator-$(STRIMZI_VERSION).yaml \
	  | sed 's/namespace: .*/namespace: kafka/' | $(KUBECTL) apply -n kafka -f -
	$(KUBECTL) apply -f $(GH)/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
	$(KUBECTL) wait --for=condition=Available deployment --all -n cert-manager --timeout=300s
	$(KUBECTL) apply -f $(GH)/rabbitmq/cluster-operator/releases/download/$(RABBITMQ_OPERATOR_VERSION)/cluster-operator.yml
	$(KUBECTL) apply -f $(GH)/rabbitmq/messaging-topology-operator/releases/download/$(TOPOLOGY_OPERATOR_VERSION)/messaging-topology-operator-with-certmanager.yaml
	$(KUBECTL) apply -f $(GH)/knative-extensions/eventing-rabbitmq/releases/download/knative-v$(KNATIVE_VERSION)/rabbitmq-source.yaml

secrets: ## create clima's Secrets with random passwords (idempotent: existing keys are kept, missing ones added)
	@scripts/secrets.sh

images: ## build and push every function image with ko (needs KO_DOCKER_REPO)
	$(KO) build --platform=linux/amd64,linux/arm64 ./functions/...

deploy: ## deploy clima: Secrets, Kafka, RabbitMQ, the functions (ko apply), Grafana (needs KO_DOCKER_REPO)
	$(KUBECTL) apply -f knative/00-namespace.yaml
	@scripts/secrets.sh
	$(KUBECTL) apply -f kafka-source/kafka.yaml -f kafka-source/topic.yaml
	$(KUBECTL) apply -f rabbit-source/rabbitmq.yaml -f rabbit-source/topology.yaml
	$(KO) apply -f knative/
	$(KUBECTL) apply -f kafka-source/kafkasource.yaml -f rabbit-source/rabbitmqsource.yaml
	$(KUBECTL) create configmap clima-dashboard -n clima --from-file=grafana/dashboard.json \
	  --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(HELM) repo add grafana https://grafana.github.io/helm-charts --force-update >/dev/null
	$(HELM) upgrade --install grafana grafana/grafana --version $(GRAFANA_CHART_VERSION) -n clima -f grafana/values.yaml

undeploy: ## remove clima from the cluster (keeps the platform from cluster-deps)
	-$(HELM) uninstall grafana -n clima
	-$(KUBECTL) delete -f kafka-source/kafkasource.yaml -f rabbit-source/rabbitmqsource.yaml --ignore-not-found
	-$(KUBECTL) delete -f knative/ --ignore-not-found
	-$(KUBECTL) delete -f rabbit-source/topology.yaml -f rabbit-source/rabbitmq.yaml --ignore-not-found
	-$(KUBECTL) delete -f kafka-source/topic.yaml -f kafka-source/kafka.yaml --ignore-not-found

clean: ## remove build output (bin/, .tools/); the local data in .clima/ stays (make run ARGS=-fresh empties it)
	rm -rf bin .tools
