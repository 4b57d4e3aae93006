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
KIND_VERSION       := v0.30.0
KIND               ?= $(GO) run sigs.k8s.io/kind@$(KIND_VERSION)
HELM               ?= helm

# The platform clima runs on, pinned (make cluster-deps installs it).
KNATIVE_VERSION           := 1.20.0
STRIMZI_VERSION           := 0.48.0
CERT_MANAGER_VERSION      := v1.19.1
RABBITMQ_OPERATOR_VERSION := v2.16.0
TOPOLOGY_OPERATOR_VERSION := v1.17.4
GRAFANA_CHART_VERSION     := 10.1.4
GH                        := https://github.com
SERVING_RELEASE           := $(GH)/knative/serving/releases/download/knative-v$(KNATIVE_VERSION)
KOURIER_RELEASE           := $(GH)/knative-extensions/net-kourier/releases/download/knative-v$(KNATIVE_VERSION)
EVENTING_RELEASE          := $(GH)/knative/eventing/releases/download/knative-v$(KNATIVE_VERSION)
KAFKA_RELEASE             := $(GH)/knative-extensions/eventing-kafka-broker/releases/download/knative-v$(KNATIVE_VERSION)
# Knative 1.20's components exit on an older API server (knative.dev/pkg version.go).
KUBERNETES_MIN_VERSION    := 1.32.0
# Strimzi's 384Mi limit OOM-kills its operator beside cert-manager on a small
# cluster; Knative's own test set-up raises it to this (eventing-kafka-broker #4549).
STRIMZI_OPERATOR_MEMORY   := 768Mi

# Settings given on make's command line (make cluster-deps DOMAIN=…); the
# environment does not set them.
# The one domain of public Routes (config-domain): ingest is ingest.clima.$(DOMAIN).
# Without one Knative gives every Route svc.cluster.local, which it never exposes.
DOMAIN        = example.com
# How long each step waits for what the next one needs.
WAIT          = 600s
# A registry gets an index of both platforms (ko.yaml); kind.local can load only
# one image per function, so it gets the nodes' own (arm64 on Apple silicon).
KO_PLATFORMS  = $(if $(filter kind.local,$(KO_DOCKER_REPO)),linux/$(or $(NODE_ARCH),$(error cannot read the architecture of the kind node: is kubectl pointed at the kind cluster?)),linux/amd64,linux/arm64)
NODE_ARCH     = $(shell $(KUBECTL) get nodes -o jsonpath='{.items[0].status.nodeInfo.architecture}')

# The CRDs whose kinds the next steps apply (make cluster-deps waits until
# they are Established: served by the API server).
SERVING_CRDS  := images.caching.internal.knative.dev certificates.networking.internal.knative.dev services.serving.knative.dev
EVENTING_CRDS := brokers.eventing.knative.dev triggers.eventing.knative.dev
STRIMZI_CRDS  := kafkas.kafka.strimzi.io kafkanodepools.kafka.strimzi.io kafkatopics.kafka.strimzi.io
TOPOLOGY_CRDS := queues.rabbitmq.com exchanges.rabbitmq.com bindings.rabbitmq.com users.rabbitmq.com permissions.rabbitmq.com
# $(call established,CRD…), $(call available,NAMESPACE,DEPLOYMENT…),
# $(call ready,NAMESPACE,RESOURCE…): wait, up to WAIT, for CRDs to be served,
# Deployments to be Available, every object of each resource to be Ready; a
# time-out names what it waited for.
established = $(KUBECTL) wait --for=condition=Established --timeout=$(WAIT) $(addprefix crd/,$(1))
available   = $(KUBECTL) wait --for=condition=Available --timeout=$(WAIT) -n $(1) $(addprefix deployment/,$(2))
ready       = $(KUBECTL) wait --for=condition=Ready --timeout=$(WAIT) -n $(1) $(subst $(space),$(comma),$(strip $(2))) --all
space := $(subst ,, )
comma := ,

FUZZTIME           ?= 30s

.PHONY: help deps build run stats load bench screenshot test fuzz lint proto clean kind-cluster cluster-deps secrets images deploy undeploy

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
	$(GO) test -run '^$$' -fuzz '^FuzzCloudEvents$$' -fuzztime $(FUZZTIME) ./internal/fnruntime

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

kind-cluster: ## create a one-node kind cluster for clima (scripts/kind-cluster.yaml; needs Docker), named kind as ko's kind.local expects
	$(KIND) create cluster --config scripts/kind-cluster.yaml

cluster-deps: ## install Knative (Kourier), Kafka broker and source, Strimzi, cert-manager, RabbitMQ operators and source; each step waits for what the next needs
	@KUBECTL=$(KUBECTL) scripts/cluster-check.sh $(KUBERNETES_MIN_VERSION)
	$(KUBECTL) apply -f $(SERVING_RELEASE)/serving-crds.yaml
	$(call established,$(SERVING_CRDS))
	$(KUBECTL) apply -f $(SERVING_RELEASE)/serving-core.yaml
	$(call available,knative-serving,activator autoscaler controller webhook)
	$(KUBECTL) apply -f $(KOURIER_RELEASE)/kourier.yaml
	$(call available,knative-serving,net-kourier-controller)
	$(call available,kourier-system,3scale-kourier-gateway)
	$(KUBECTL) patch configmap/config-network -n knative-serving --type merge \
	  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
	$(KUBECTL) patch configmap/config-domain -n knative-serving --type json -p '[{"op":"replace","path":"/data","value":{"$(DOMAIN)":""}}]'
	$(KUBECTL) apply -f $(EVENTING_RELEASE)/eventing-crds.yaml
	$(call established,$(EVENTING_CRDS))
	$(KUBECTL) apply -f $(EVENTING_RELEASE)/eventing-core.yaml
	$(call available,knative-eventing,eventing-controller eventing-webhook)
	$(KUBECTL) apply -f $(KAFKA_RELEASE)/eventing-kafka-controller.yaml
	$(call available,knative-eventing,kafka-controller kafka-webhook-eventing)
	$(KUBECTL) apply -f $(KAFKA_RELEASE)/eventing-kafka-broker.yaml
	$(call available,knative-eventing,kafka-broker-receiver)
	$(KUBECTL) apply -f $(KAFKA_RELEASE)/eventing-kafka-source.yaml
	$(call established,kafkasources.sources.knative.dev)
	KUBECTL=$(KUBECTL) WAIT=$(WAIT) scripts/kafka-broker-limits.sh
	$(KUBECTL) create namespace kafka --dry-run=client -o yaml | $(KUBECTL) apply -f -
	curl -fsSL $(GH)/strimzi/strimzi-kafka-operator/releases/download/$(STRIMZI_VERSION)/strimzi-cluster-operator-$(STRIMZI_VERSION).yaml \
	  | sed 's/namespace: .*/namespace: kafka/' | $(KUBECTL) apply -n kafka -f -
	$(KUBECTL) set resources deployment/strimzi-cluster-operator -n kafka --limits=memory=$(STRIMZI_OPERATOR_MEMORY)
	$(call available,kafka,strimzi-cluster-operator)
	$(call established,$(STRIMZI_CRDS))
	$(KUBECTL) apply -f $(GH)/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
	$(call available,cert-manager,cert-manager cert-manager-cainjector cert-manager-webhook)
	$(KUBECTL) wait --for=jsonpath='{.webhooks[0].clientConfig.caBundle}' --timeout=$(WAIT) validatingwebhookconfiguration/cert-manager-webhook
	$(KUBECTL) apply -f $(GH)/rabbitmq/cluster-operator/releases/download/$(RABBITMQ_OPERATOR_VERSION)/cluster-operator.yml
	$(call available,rabbitmq-system,rabbitmq-cluster-operator)
	$(call established,rabbitmqclusters.rabbitmq.com)
	$(KUBECTL) apply -f $(GH)/rabbitmq/messaging-topology-operator/releases/download/$(TOPOLOGY_OPERATOR_VERSION)/messaging-topology-operator-with-certmanager.yaml
	$(call available,rabbitmq-system,messaging-topology-operator)
	$(call established,$(TOPOLOGY_CRDS))
	$(KUBECTL) apply -f $(GH)/knative-extensions/eventing-rabbitmq/releases/download/knative-v$(KNATIVE_VERSION)/rabbitmq-source.yaml
	$(call available,knative-sources,rabbitmq-controller-manager rabbitmq-webhook)
	$(call established,rabbitmqsources.sources.knative.dev)

secrets: ## create clima's Secrets with random passwords (idempotent: existing keys are kept, missing ones added)
	@scripts/secrets.sh

images: ## build and push every function image with ko (needs KO_DOCKER_REPO)
	$(KO) build --platform=$(KO_PLATFORMS) ./functions/...

deploy: ## deploy clima: Secrets, Kafka, RabbitMQ, the functions (ko apply), the sources, Grafana, each after what it needs (needs KO_DOCKER_REPO)
	$(KUBECTL) apply -f knative/00-namespace.yaml
	@scripts/secrets.sh
	$(KUBECTL) apply -f kafka-source/kafka.yaml -f kafka-source/topic.yaml
	$(KUBECTL) apply -f rabbit-source/rabbitmq.yaml
	$(call ready,kafka,kafkas.kafka.strimzi.io kafkatopics.kafka.strimzi.io)
	$(KUBECTL) wait --for=condition=AllReplicasReady --timeout=$(WAIT) -n clima rabbitmqclusters.rabbitmq.com --all
	$(KUBECTL) apply -f rabbit-source/topology.yaml
	$(call ready,clima,queues.rabbitmq.com exchanges.rabbitmq.com bindings.rabbitmq.com users.rabbitmq.com permissions.rabbitmq.com)
	$(KO) apply -f knative/ --platform=$(KO_PLATFORMS)
	$(call ready,clima,services.serving.knative.dev brokers.eventing.knative.dev triggers.eventing.knative.dev)
	$(KUBECTL) rollout status --timeout=$(WAIT) -n clima statefulset/redis
	$(KUBECTL) rollout status --timeout=$(WAIT) -n clima statefulset/valkey
	$(KUBECTL) apply -f kafka-source/kafkasource.yaml -f rabbit-source/rabbitmqsource.yaml
	$(call ready,clima,kafkasources.sources.knative.dev rabbitmqsources.sources.knative.dev)
	$(KUBECTL) create configmap clima-dashboard -n clima --from-file=grafana/dashboard.json \
	  --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(HELM) repo add grafana https://grafana.github.io/helm-charts --force-update >/dev/null
	$(HELM) upgrade --install grafana grafana/grafana --version $(GRAFANA_CHART_VERSION) -n clima -f grafana/values.yaml \
	  --wait --timeout=$(WAIT)
	@KUBECTL=$(KUBECTL) scripts/network-policy-probe.sh

undeploy: ## remove clima from the cluster (keeps the platform from cluster-deps)
	-$(HELM) uninstall grafana -n clima
	-$(KUBECTL) delete -f kafka-source/kafkasource.yaml -f rabbit-source/rabbitmqsource.yaml --ignore-not-found
	-$(KUBECTL) delete -f knative/ --ignore-not-found
	-$(KUBECTL) delete -f rabbit-source/topology.yaml -f rabbit-source/rabbitmq.yaml --ignore-not-found
	-$(KUBECTL) delete -f kafka-source/topic.yaml -f kafka-source/kafka.yaml --ignore-not-found

clean: ## remove build output (bin/, .tools/); the local data in .clima/ stays (make run ARGS=-fresh empties it)
	rm -rf bin .tools
