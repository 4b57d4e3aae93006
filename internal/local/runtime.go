// Package local runs clima on one machine from the same manifests a cluster
// runs (knative/, kafka-source/, rabbit-source/): every Knative Service as
// replicas that are processes of the real function binary, as many as
// Knative's own KPA decides, from zero; the Broker with the Kafka broker's
// semantics on an embedded Kafka; the Triggers, the KafkaSource and the
// RabbitmqSource as dispatchers with their delivery specs; real RabbitMQ,
// Redis and Valkey; the dashboard of grafana/dashboard.json. `clima dev`
// runs it.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"

	"github.com/clima-dev/clima/internal/manifest"
)

// Options configure a local runtime.
type Options struct {
	// Root is the repository: the manifests and the Go module.
	Root string
	// StateDir holds binaries, logs, store data and endpoints.json.
	StateDir string
	// BrokerAddr is where the broker ingress listens (127.0.0.1:8080).
	BrokerAddr string
	// DashboardAddr is where the dashboard of grafana/dashboard.json is
	// served (127.0.0.1:3000).
	DashboardAddr string
	// Idle is Knative's scale-to-zero grace period: how long the last
	// replica stays after the autoscaler wants none.
	Idle time.Duration
	// Autoscaler holds settings of Knative's config-autoscaler ConfigMap
	// ("stable-window": "6s", …); unset ones keep Knative's defaults.
	Autoscaler map[string]string
	// KafkaBrokers, RabbitURL, RedisURL, ValkeyURL name servers to use
	// instead of starting them (KAFKA_BROKERS, RABBITMQ_URL, …).
	KafkaBrokers, RabbitURL, RedisURL, ValkeyURL string
	// RabbitPrefix is put before every queue and exchange name, so that
	// runtimes sharing a RabbitMQ server do not mix (tests use it).
	RabbitPrefix string
	// KafkaStorage is how the embedded Kafka keeps its data (KafkaDisk
	// when empty).
	KafkaStorage KafkaStorage
	// Fresh starts from empty data: the state folder's data (the embedded
	// Kafka's, Redis' and Valkey's) is removed, and the queues and
	// exchanges of rabbit-source/ are deleted and declared again.
	Fresh bool
	// Debug makes every function serve Go's profiles (see Status).
	Debug bool
	// Annotations override a Service's revision annotations, by Service
	// name (as `kubectl annotate` would), e.g. to try another min-scale.
	Annotations map[string]map[string]string
	Log         *slog.Logger
}

// Endpoints is what endpoints.json holds: where everything listens.
type Endpoints struct {
	Broker   string            `json:"broker"`
	Services map[string]string `json:"services"`
	Redis    string            `json:"redis"`
	Valkey   string            `json:"valkey"`
	RabbitMQ string            `json:"rabbitmq"`
	Kafka    string            `json:"kafka"`
	Status   string            `json:"status"`
	// Dashboard is the page that shows grafana/dashboard.json live.
	Dashboard string `json:"dashboard"`
}

// EndpointsFile is the name of the endpoints file in the state folder.
const EndpointsFile = "endpoints.json"

// Status is what GET /status answers.
type Status struct {
	Services    map[string]ServiceStatus    `json:"services"`
	Dispatchers map[string]DispatcherStatus `json:"dispatchers"`
	// Servers are the PIDs of the servers the runtime started.
	Servers map[string]int `json:"servers"`
	// RuntimePID is clima dev's own: the broker, the dispatchers, Kafka.
	RuntimePID int `json:"runtime_pid"`
}

// PIDs are the processes the runtime started and runs now: the Services'
// replicas and the servers.
func (s Status) PIDs() []int {
	var pids []int
	for _, svc := range s.Services {
		pids = append(pids, svc.PIDs...)
	}
	for _, pid := range s.Servers {
		pids = append(pids, pid)
	}
	return pids
}

type runtime struct {
	opts       Options
	set        *manifest.Set
	log        *slog.Logger
	kafka      *kafkaInfra
	rabbit     *rabbitInfra
	stores     map[string]*keyValue // by StatefulSet name
	services   map[string]*service
	brokers    map[string]*broker // by "namespace/name"
	triggers   []*trigger
	kSources   []*kafkaSource
	rSources   []*rabbitSource
	loops      []*kafkaLoop
	ingress    *http.Server
	sender     *sender
	brokerURL  string
	dashboard  *dashboardServer
	dispatchWG sync.WaitGroup
	// recovered says what the runtime found left from an earlier run.
	recovered []string
}

// Run starts everything, writes endpoints.json, and runs until ctx ends;
// then it stops everything it started.
func Run(ctx context.Context, opts Options) error {
	log := opts.Log
	set, err := manifest.Load(opts.Root, manifest.Dirs...)
	if err != nil {
		return err
	}
	for name, annotations := range opts.Annotations {
		s := set.Service(name)
		if s == nil {
			return fmt.Errorf("-annotate: no Service %s", name)
		}
		if s.Spec.Template.Annotations == nil {
			s.Spec.Template.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			s.Spec.Template.Annotations[k] = v
		}
	}
	if opts.KafkaStorage == "" {
		opts.KafkaStorage = KafkaDisk
	}
	unlock, err := lockState(opts.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	r := &runtime{opts: opts, set: set, log: log, stores: map[string]*keyValue{}, services: map[string]*service{}, brokers: map[string]*broker{}}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // the dispatchers stop first
		r.stop()
	}()
	if err := r.start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

func (r *runtime) start(ctx context.Context) error {
	// The addresses of an earlier run are gone: nothing may read them.
	if err := os.Remove(filepath.Join(r.opts.StateDir, EndpointsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dataDir := filepath.Join(r.opts.StateDir, "data")
	if r.opts.Fresh {
		if err := os.RemoveAll(dataDir); err != nil {
			return fmt.Errorf("-fresh: %w", err)
		}
		r.log.Info("starting from empty data: removed " + dataDir)
	}
	for _, dir := range []string{"bin", "logs", "data"} {
		if err := os.MkdirAll(filepath.Join(r.opts.StateDir, dir), 0o755); err != nil {
			return err
		}
	}
	if err := r.build(ctx); err != nil {
		return err
	}

	var err error
	kafkaDir := filepath.Join(dataDir, "kafka")
	if r.kafka, err = startKafka(ctx, r.opts.KafkaBrokers, r.opts.KafkaStorage, kafkaDir, r.topics(), r.log); err != nil {
		return err
	}
	if r.kafka.recovered {
		r.recovered = append(r.recovered, r.kafkaPending(kafkaDir)...)
	}
	if r.rabbit, err = startRabbit(ctx, r.opts.RabbitURL, r.log); err != nil {
		return err
	}
	if r.opts.Fresh {
		if err := deleteTopology(r.rabbit.url, r.opts.RabbitPrefix, r.set); err != nil {
			return fmt.Errorf("-fresh: %w", err)
		}
		r.log.Info("starting from empty data: deleted the queues and exchanges of rabbit-source/", "prefix", r.opts.RabbitPrefix)
	}
	ready, err := declareTopology(r.rabbit.url, r.opts.RabbitPrefix, r.set)
	if err != nil {
		return err
	}
	for _, queue := range slices.Sorted(maps.Keys(ready)) {
		if ready[queue] > 0 {
			r.recovered = append(r.recovered, fmt.Sprintf("RabbitMQ queue %s: %d messages ready", queue, ready[queue]))
		}
	}
	for _, ss := range r.set.StatefulSets {
		url := map[string]string{"redis": r.opts.RedisURL, "valkey": r.opts.ValkeyURL}[ss.Name]
		kv, err := startKeyValue(ctx, ss.Name, url, filepath.Join(r.opts.StateDir, "data"), r.log)
		if err != nil {
			return err
		}
		r.stores[ss.Name] = kv
	}

	lis, err := net.Listen("tcp", r.opts.BrokerAddr)
	if err != nil {
		return fmt.Errorf("listening for the broker ingress on %s: %w", r.opts.BrokerAddr, err)
	}
	r.brokerURL = "http://" + lis.Addr().String()
	for _, b := range r.set.Brokers {
		address, err := apis.ParseURL(r.brokerURL + "/" + b.Namespace + "/" + b.Name)
		if err != nil {
			return err
		}
		r.brokers[b.Namespace+"/"+b.Name] = &broker{namespace: b.Namespace, name: b.Name, address: duckv1.Addressable{URL: address}, topic: brokerTopic(b.Namespace, b.Name),
			writer: newBrokerWriter(r.kafka.brokers, brokerTopic(b.Namespace, b.Name)), log: r.log}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", r.serveStatus)
	mux.HandleFunc("PUT /faults", r.serveFaults)
	mux.HandleFunc("GET /autoscaling", r.serveAutoscaling)
	if r.opts.Debug {
		// Profiles of the runtime itself: kfake, dispatchers, proxies.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("/", r.routeBroker)
	r.ingress = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.ingress.Serve(lis) }()

	asConfig, err := r.autoscalerConfig()
	if err != nil {
		return err
	}
	for _, s := range r.set.Services {
		svc := newService(s.Name, filepath.Join(r.opts.StateDir, "bin", s.Name), nil, isGRPC(s), filepath.Join(r.opts.StateDir, "logs"), r.log)
		svc.debug = r.opts.Debug
		if svc.scaler, err = newAutoscaler(s, asConfig, svc.load, svc.readyCount); err != nil {
			return err
		}
		if err := svc.listen("127.0.0.1:0"); err != nil {
			return err
		}
		r.services[s.Name] = svc
	}
	rewrite := r.rewriter()
	secrets := r.secrets()
	for _, s := range r.set.Services {
		env, err := r.serviceEnv(s, rewrite, secrets)
		if err != nil {
			return err
		}
		r.services[s.Name].env = env
	}
	if r.dashboard, err = startDashboard(r.opts.Root, r.opts.DashboardAddr, rewrite, secrets, r.log); err != nil {
		return err
	}

	if err := r.startDispatchers(ctx); err != nil {
		return err
	}
	if r.kafka.cluster != nil {
		r.dispatchWG.Go(func() { r.watchRetention(ctx) })
	}
	// Each revision starts at its initial scale, then its KPA decides.
	for _, svc := range r.services {
		svc.scale(svc.scaler.initialScale())
		r.dispatchWG.Go(func() { svc.autoscale(ctx) })
	}
	return r.writeEndpoints()
}

// build compiles every Service's ko:// main package with go build (cached).
func (r *runtime) build(ctx context.Context) error {
	args := []string{"build", "-o", filepath.Join(r.opts.StateDir, "bin") + "/"}
	for _, s := range r.set.Services {
		importPath, ok := manifest.ImportPath(s)
		if !ok {
			return fmt.Errorf("service %s: image is not a ko:// reference", s.Name)
		}
		if path.Base(importPath) != s.Name {
			return fmt.Errorf("service %s: its package %s must be named after it", s.Name, importPath)
		}
		args = append(args, importPath)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.opts.Root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the functions: %v\n%s", err, out)
	}
	r.log.Info("built the functions", "count", len(r.set.Services), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func brokerTopic(namespace, name string) string { return "knative-broker-" + namespace + "-" + name }

// topics are the KafkaTopics of kafka-source/, with their configs, and one
// topic per Broker.
func (r *runtime) topics() []kafkaTopic {
	var topics []kafkaTopic
	for _, t := range r.set.KafkaTopics {
		configs := map[string]string{}
		for name, value := range t.Spec.Config {
			configs[name] = configValue(value)
		}
		topics = append(topics, kafkaTopic{name: t.Name(), partitions: int(t.Spec.Partitions), configs: configs})
	}
	for _, b := range r.set.Brokers {
		partitions := 1
		for _, c := range r.set.ConfigMaps {
			if b.Spec.Config != nil && c.Name == b.Spec.Config.Name && c.Namespace == b.Spec.Config.Namespace {
				if n, err := strconv.Atoi(c.Data["default.topic.partitions"]); err == nil {
					partitions = n
				}
			}
		}
		topics = append(topics, kafkaTopic{name: brokerTopic(b.Namespace, b.Name), partitions: partitions})
	}
	return topics
}

// configValue is a KafkaTopic config value as Kafka takes it: YAML numbers
// arrive as float64 (604800000, not 6.048e+08).
func configValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// consumerGroups are the Kafka consumer groups of the Triggers and the
// KafkaSources, by the topic each reads.
func (r *runtime) consumerGroups() map[string][]string {
	groups := map[string][]string{}
	for _, t := range r.set.Triggers {
		topic := brokerTopic(t.Namespace, t.Spec.Broker)
		groups[topic] = append(groups[topic], triggerGroup(t.Namespace, t.Name))
	}
	for _, ks := range r.set.KafkaSources {
		for _, topic := range ks.Spec.Topics {
			groups[topic] = append(groups[topic], ks.Spec.ConsumerGroup)
		}
	}
	return groups
}

// watchRetention warns when the embedded Kafka's retention removes records
// that a consumer group had not committed: they will never be delivered.
func (r *runtime) watchRetention(ctx context.Context) {
	warned := map[string]int64{}
	ticker := time.NewTicker(kafkaRetentionCheck)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for topic, groups := range r.consumerGroups() {
			for _, group := range groups {
				if n := r.kafka.dropped(topic, group); n > warned[topic+"/"+group] {
					r.log.Warn("Kafka retention removed records a consumer group had not delivered", "topic", topic,
						"group", group, "records", n, "bound_bytes_per_partition", kafkaRetentionBytes)
					warned[topic+"/"+group] = n
				}
			}
		}
	}
}

// triggerGroup is a Trigger's consumer group, named as the Kafka broker
// names it.
func triggerGroup(namespace, name string) string { return "knative-trigger-" + namespace + "-" + name }

// kafkaPending says, per topic and consumer group, how many records the
// reloaded embedded Kafka holds that the group has not committed: what
// the Triggers and the KafkaSource will deliver now.
func (r *runtime) kafkaPending(dir string) []string {
	lines := []string{"Kafka data reloaded from " + dir + "; records not yet delivered, per topic and consumer group:"}
	groups := r.consumerGroups()
	for _, topic := range slices.Sorted(maps.Keys(groups)) {
		for _, group := range groups[topic] {
			lines = append(lines, fmt.Sprintf("  %-30s %-40s %d", topic, group, r.kafka.pending(topic, group)))
		}
	}
	return lines
}

func isGRPC(s *servingv1.Service) bool {
	for _, c := range s.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "h2c" {
				return true
			}
		}
	}
	return false
}

// rewriter maps the cluster's DNS names in a manifest's env to where the
// same things listen here.
func (r *runtime) rewriter() *strings.Replacer {
	pairs := map[string]string{}
	hosts := func(name, namespace string) []string {
		return []string{name + "." + namespace + ".svc.cluster.local", name + "." + namespace + ".svc"}
	}
	for name, svc := range r.services {
		local := strings.TrimPrefix(svc.url, "http://")
		for _, h := range hosts(name, r.set.Service(name).Namespace) {
			pairs[h+":80"] = local
			pairs["http://"+h] = svc.url
		}
	}
	for _, ks := range r.set.K8sServices {
		kv, ok := r.stores[ks.Name]
		if !ok {
			continue
		}
		for _, p := range ks.Spec.Ports {
			for _, h := range hosts(ks.Name, ks.Namespace) {
				pairs[h+":"+strconv.Itoa(int(p.Port))] = kv.addr
			}
		}
	}
	for _, k := range r.set.Kafkas {
		for _, h := range hosts(k.Metadata.Name+"-kafka-bootstrap", k.Metadata.Namespace) {
			pairs[h+":9092"] = strings.Join(r.kafka.brokers, ",")
		}
	}
	rabbitHost := hostPort(r.rabbit.url)
	for _, c := range r.set.RabbitClusters {
		for _, h := range hosts(c.Metadata.Name, c.Metadata.Namespace) {
			pairs[h+":5672"] = rabbitHost
		}
	}
	for _, h := range []string{"kafka-broker-ingress.knative-eventing.svc.cluster.local", "broker-ingress.knative-eventing.svc.cluster.local"} {
		pairs["http://"+h] = r.brokerURL
	}
	patterns := make([]string, 0, len(pairs))
	for p := range pairs {
		patterns = append(patterns, p)
	}
	// Longer patterns first: the replacer prefers earlier arguments.
	sort.Slice(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	args := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		args = append(args, p, pairs[p])
	}
	return strings.NewReplacer(args...)
}

// secrets gives every Secret key the manifests reference its local value:
// a store's password is the password of the server standing in for it; a
// RabbitMQ user's credentials are those of the local RabbitMQ URL.
func (r *runtime) secrets() map[string]string {
	values := map[string]string{}
	for _, ss := range r.set.StatefulSets {
		kv := r.stores[ss.Name]
		for _, c := range ss.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					values[e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = kv.password
				}
			}
		}
	}
	user, password := rabbitCredentials(r.rabbit.url)
	for _, u := range r.set.RabbitUsers {
		if s := u.Spec.ImportCredentialsSecret; s != nil {
			values[s.Name+"/username"] = user
			values[s.Name+"/password"] = password
		}
	}
	return values
}

// serviceEnv is a Service's environment here: its manifest's, with cluster
// names rewritten and Secrets resolved, and what Knative sets.
func (r *runtime) serviceEnv(s *servingv1.Service, rewrite *strings.Replacer, secrets map[string]string) ([]string, error) {
	env := []string{"K_SERVICE=" + s.Name, "K_CONFIGURATION=" + s.Name, "K_REVISION=" + s.Name + "-00001"}
	names := map[string]bool{}
	for _, q := range r.set.Queues {
		names[q.Spec.Name] = true
	}
	for _, e := range r.set.Exchanges {
		names[e.Spec.Name] = true
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		// In a pod Go sizes GOMAXPROCS to the container's CPU limit (Go
		// 1.25 reads cgroups); a local process has no cgroup, so it is
		// told the same.
		if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			env = append(env, "GOMAXPROCS="+strconv.FormatInt(max(1, cpu.Value()), 10))
		}
		for _, e := range c.Env {
			var value string
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				v, ok := secrets[ref]
				if !ok {
					return nil, fmt.Errorf("service %s: no local value for Secret key %s", s.Name, ref)
				}
				value = v
			case names[e.Value] && r.opts.RabbitPrefix != "":
				value = r.opts.RabbitPrefix + e.Value
			default:
				value = rewrite.Replace(e.Value)
			}
			env = append(env, e.Name+"="+value)
		}
	}
	return env, nil
}

// resolve gives where a destination is here: a Service's local endpoint
// (which holds a request until a replica is ready, as the activator does),
// or the URI as it is.
func (r *runtime) resolve(d *duckv1.Destination) (duckv1.Addressable, error) {
	if d == nil {
		return duckv1.Addressable{}, errors.New("no destination")
	}
	if d.Ref != nil {
		if d.Ref.Kind != "Service" {
			return duckv1.Addressable{}, fmt.Errorf("destination %s %s: only Knative Services are supported locally", d.Ref.Kind, d.Ref.Name)
		}
		svc, ok := r.services[d.Ref.Name]
		if !ok {
			return duckv1.Addressable{}, fmt.Errorf("destination Service %s does not exist", d.Ref.Name)
		}
		u, err := apis.ParseURL(svc.url)
		if err != nil {
			return duckv1.Addressable{}, err
		}
		if d.URI != nil {
			u.Path = d.URI.Path
		}
		return duckv1.Addressable{URL: u}, nil
	}
	if d.URI != nil {
		return duckv1.Addressable{URL: d.URI}, nil
	}
	return duckv1.Addressable{}, errors.New("destination has neither ref nor uri")
}

// resolveDeadLetter resolves a delivery spec's dead-letter sink, if any.
func (r *runtime) resolveDeadLetter(d *eventingduckv1.DeliverySpec) (*duckv1.Addressable, error) {
	if d == nil || d.DeadLetterSink == nil {
		return nil, nil
	}
	dest, err := r.resolve(d.DeadLetterSink)
	if err != nil {
		return nil, err
	}
	return &dest, nil
}

func (r *runtime) startDispatchers(ctx context.Context) error {
	flags, err := manifest.ReleaseFeatures()
	if err != nil {
		return err
	}
	send := newSender(r.log)
	r.sender = send
	for _, t := range r.set.Triggers {
		b, ok := r.brokers[t.Namespace+"/"+t.Spec.Broker]
		if !ok {
			return fmt.Errorf("trigger %s: Broker %s does not exist", t.Name, t.Spec.Broker)
		}
		subscriber, err := r.resolve(&t.Spec.Subscriber)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		delivery := t.Spec.Delivery
		if delivery == nil {
			for _, broker := range r.set.Brokers {
				if broker.Name == t.Spec.Broker {
					delivery = broker.Spec.Delivery
				}
			}
		}
		deadLetter, err := r.resolveDeadLetter(delivery)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		p, err := newPolicy(delivery, deadLetter, nil, flags)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		tr := &trigger{name: t.Name, filter: triggerFilter(t.Spec), subscriber: subscriber, policy: p, broker: b, sender: send}
		r.triggers = append(r.triggers, tr)
		r.loops = append(r.loops, newKafkaLoop(r.kafka.brokers, triggerGroup(t.Namespace, t.Name), []string{b.topic}, 256, r.log, tr.handle))
	}
	for _, ks := range r.set.KafkaSources {
		sink, err := r.resolve(&ks.Spec.Sink)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		deadLetter, err := r.resolveDeadLetter(ks.Spec.Delivery)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		p, err := newPolicy(ks.Spec.Delivery, deadLetter, nil, flags)
		if err != nil {
			return err
		}
		src := &kafkaSource{namespace: ks.Metadata.Namespace, name: ks.Metadata.Name, sink: sink, policy: p, sender: send}
		r.kSources = append(r.kSources, src)
		workers := 256
		if ks.Spec.Ordering != "unordered" {
			workers = 1 // ordered: one record at a time
		}
		r.loops = append(r.loops, newKafkaLoop(r.kafka.brokers, ks.Spec.ConsumerGroup, ks.Spec.Topics, workers, r.log, src.handle))
	}
	for _, rs := range r.set.RabbitmqSources {
		sink, err := r.resolve(&rs.Spec.Sink)
		if err != nil {
			return fmt.Errorf("rabbitmq source %s: %w", rs.Metadata.Name, err)
		}
		p, err := newPolicy(rs.Spec.Delivery, nil, rabbitCheckRetry, flags)
		if err != nil {
			return err
		}
		parallelism := 1
		if rs.Spec.Resources.Parallelism != nil {
			parallelism = *rs.Spec.Resources.Parallelism
		}
		r.rSources = append(r.rSources, &rabbitSource{namespace: rs.Metadata.Namespace, name: rs.Metadata.Name, url: r.rabbit.url,
			queue: r.opts.RabbitPrefix + rs.Spec.Resources.QueueName, parallelism: parallelism, sink: sink, policy: p, sender: send, log: r.log})
	}
	for _, l := range r.loops {
		r.dispatchWG.Go(func() { l.run(ctx) })
	}
	for _, s := range r.rSources {
		r.dispatchWG.Go(func() { s.run(ctx) })
	}
	return nil
}

func (r *runtime) routeBroker(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if len(parts) == 2 {
		if b, ok := r.brokers[parts[0]+"/"+parts[1]]; ok {
			b.ServeHTTP(w, req)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no broker at "+req.URL.Path+"; the brokers are at /<namespace>/<name>")
}

// Faults are the faults the runtime can inject on request (PUT /faults).
type Faults struct {
	// DuplicateDeliveries makes every dispatcher deliver each event twice.
	DuplicateDeliveries bool `json:"duplicate_deliveries"`
}

func (r *runtime) serveFaults(w http.ResponseWriter, req *http.Request) {
	var f Faults
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<10)).Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, "want {\"duplicate_deliveries\": true|false}")
		return
	}
	r.sender.duplicate.Store(f.DuplicateDeliveries)
	r.log.Warn("faults set", "duplicate_deliveries", f.DuplicateDeliveries)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(f)
}

// autoscalerConfig is Knative's config-autoscaler with the runtime's
// settings: -scale-to-zero-after is its scale-to-zero grace period.
func (r *runtime) autoscalerConfig() (*autoscalerconfig.Config, error) {
	data := map[string]string{}
	for k, v := range r.opts.Autoscaler {
		data[k] = v
	}
	if r.opts.Idle > 0 {
		data["scale-to-zero-grace-period"] = r.opts.Idle.String()
	}
	return AutoscalerConfig(data)
}

// serveAutoscaling answers every Service's autoscaler decisions so far.
func (r *runtime) serveAutoscaling(w http.ResponseWriter, _ *http.Request) {
	decisions := map[string][]Decision{}
	for name, s := range r.services {
		decisions[name] = s.scaler.history()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(decisions)
}

func (r *runtime) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r.status())
}

func (r *runtime) status() Status {
	st := Status{Services: map[string]ServiceStatus{}, Dispatchers: map[string]DispatcherStatus{}, Servers: map[string]int{}, RuntimePID: os.Getpid()}
	for name, s := range r.services {
		st.Services[name] = s.status()
	}
	for _, t := range r.triggers {
		st.Dispatchers["trigger/"+t.name] = t.status()
	}
	for _, s := range r.kSources {
		st.Dispatchers["kafkasource/"+s.name] = s.status()
	}
	for _, s := range r.rSources {
		st.Dispatchers["rabbitmqsource/"+s.name] = s.status()
	}
	for name, kv := range r.stores {
		if pid := kv.pid(); pid != 0 {
			st.Servers[name] = pid
		}
	}
	return st
}

func (r *runtime) writeEndpoints() error {
	e := Endpoints{Services: map[string]string{}, RabbitMQ: r.rabbit.url, Kafka: strings.Join(r.kafka.brokers, ","), Status: r.brokerURL + "/status", Dashboard: r.dashboard.url}
	for _, b := range r.brokers {
		e.Broker = r.brokerURL + "/" + b.namespace + "/" + b.name
	}
	for name, s := range r.services {
		e.Services[name] = s.url
	}
	if kv, ok := r.stores["redis"]; ok {
		e.Redis = kv.URL()
	}
	if kv, ok := r.stores["valkey"]; ok {
		e.Valkey = kv.URL()
	}
	names := make([]string, 0, len(e.Services))
	for n := range e.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("clima dev is running\n  broker ingress  %s\n", e.Broker)
	for _, n := range names {
		fmt.Printf("  %-15s %s\n", n, e.Services[n])
	}
	fmt.Printf("  redis           %s\n  valkey          %s\n  rabbitmq        %s\n  kafka           %s\n  status          %s\n",
		redact(e.Redis), redact(e.Valkey), redact(e.RabbitMQ), e.Kafka, e.Status)
	fmt.Printf("  dashboard       %s  (grafana/dashboard.json, live: open it in a browser)\n", e.Dashboard)
	if len(r.recovered) > 0 {
		fmt.Printf("recovered from the last run (make run ARGS=-fresh starts from empty data):\n")
		for _, line := range r.recovered {
			fmt.Printf("  %s\n", line)
		}
	}
	// Written last: a client that finds the file finds everything running.
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(r.opts.StateDir, EndpointsFile)
	if err := os.WriteFile(path+".tmp", append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil { // whole or not at all
		return err
	}
	fmt.Printf("endpoints written to %s; Ctrl-C stops everything\n", filepath.Join(r.opts.StateDir, EndpointsFile))
	return nil
}

// stop stops, in order, the dispatchers, the Services (each drains), the
// ingress and the servers the runtime started.
func (r *runtime) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r.dispatchWG.Wait()
	var wg sync.WaitGroup
	stopped := 0
	for _, s := range r.services {
		stopped += len(s.status().PIDs)
		wg.Go(func() { s.stop(ctx) })
	}
	wg.Wait()
	if r.ingress != nil {
		_ = r.ingress.Shutdown(ctx)
	}
	if r.dashboard != nil {
		r.dashboard.close(ctx)
	}
	for _, b := range r.brokers {
		_ = b.writer.Close()
	}
	for _, kv := range r.stores {
		if kv.pid() != 0 {
			stopped++
		}
		kv.close()
	}
	if r.kafka != nil {
		r.kafka.close()
	}
	_ = os.Remove(filepath.Join(r.opts.StateDir, EndpointsFile))
	// The queues stay, with what they hold, as a cluster's outlive its pods.
	if r.rabbit != nil {
		r.rabbit.close(r.log)
	}
	fmt.Printf("clima dev stopped: %d processes it had started are stopped, nothing is left running\n", stopped)
}

func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

func rabbitCredentials(rawURL string) (string, string) {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return "guest", "guest"
	}
	password, _ := u.User.Password()
	return u.User.Username(), password
}
