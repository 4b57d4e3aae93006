// Package local runs clima on one machine from the same manifests a cluster
// runs (knative/, kafka-source/, rabbit-source/), each part of the platform
// in a package named after what it emulates:
//
//   - eventing: the Brokers' ingress and topics, the Triggers and their
//     filters, the KafkaSource and RabbitmqSource, every delivery through
//     Knative's kncloudevents Dispatcher;
//   - serving: each Knative Service as replicas that are processes of the
//     function's binary behind a local endpoint, as many as Knative's own
//     KPA decides, from and to zero;
//   - infra: the embedded Kafka, RabbitMQ, and the Redis and Valkey servers.
//
// This package wires them from the manifests (runtime, wiring), builds the
// functions and their environments (build, env), and answers GET /status,
// GET /autoscaling, PUT /faults and endpoints.json (admin); `clima dev`
// runs it.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/httpserver"
	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/local/eventing"
	"github.com/clima-dev/clima/internal/local/infra"
	"github.com/clima-dev/clima/internal/local/serving"
	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/telemetry"
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
	// KafkaStorage is how the embedded Kafka keeps its data (infra.KafkaDisk
	// when empty).
	KafkaStorage infra.KafkaStorage
	// Fresh starts from empty data: the state folder's data (the embedded
	// Kafka's, Redis' and Valkey's) is removed, and the queues and
	// exchanges of rabbit-source/ are deleted and declared again.
	Fresh bool
	// Debug makes every function serve Go's profiles (see Status).
	Debug bool
	// NoMetrics turns every metric off (METRICS_PROTOCOL=none) and starts
	// no Prometheus: what metrics cost is measured against it.
	NoMetrics bool
	// Annotations override a Service's revision annotations, by Service
	// name (as `kubectl annotate` would), e.g. to try another min-scale.
	Annotations map[string]map[string]string
	Log         *slog.Logger
}

type runtime struct {
	opts       Options
	set        *manifest.Set
	log        *slog.Logger
	kafka      *infra.Kafka
	rabbit     *infra.RabbitMQ
	stores     map[string]*infra.KeyValue // by StatefulSet name
	services   map[string]*serving.Service
	plane      *eventing.Plane
	ingress    *http.Server
	brokerURL  string
	dashboard  *dashboardServer
	telemetry  *telemetry.Telemetry // clima dev's own metrics
	prometheus *launch.Prometheus
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
		opts.KafkaStorage = infra.KafkaDisk
	}
	unlock, err := lockState(opts.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	r := &runtime{opts: opts, set: set, log: log, stores: map[string]*infra.KeyValue{}, services: map[string]*serving.Service{}}
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

func (r *runtime) start(ctx context.Context) (err error) {
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

	kafkaDir := filepath.Join(dataDir, "kafka")
	kafkaConfig := infra.KafkaConfig{External: r.opts.KafkaBrokers, Storage: r.opts.KafkaStorage, Dir: kafkaDir, MaxMessageBytes: events.MaxEventBytes}
	if r.kafka, err = infra.StartKafka(ctx, kafkaConfig, eventing.Topics(r.set), r.log); err != nil {
		return err
	}
	if r.kafka.Recovered() {
		r.recovered = append(r.recovered, r.kafkaPending(kafkaDir)...)
	}
	if r.rabbit, err = infra.StartRabbitMQ(ctx, r.opts.RabbitURL, r.log); err != nil {
		return err
	}
	if r.opts.Fresh {
		if err := infra.DeleteTopology(r.rabbit.URL(), r.opts.RabbitPrefix, r.set); err != nil {
			return fmt.Errorf("-fresh: %w", err)
		}
		r.log.Info("starting from empty data: deleted the queues and exchanges of rabbit-source/", "prefix", r.opts.RabbitPrefix)
	}
	ready, err := infra.DeclareTopology(r.rabbit.URL(), r.opts.RabbitPrefix, r.set)
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
		adminSecret, users, err := manifest.StoreUsers(ss)
		if err != nil {
			return err
		}
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if g := ss.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = *g
		}
		spec := infra.KeyValueSpec{Name: ss.Name, AdminSecret: adminSecret, Users: users, Grace: time.Duration(grace) * time.Second}
		kv, err := infra.StartKeyValue(ctx, spec, url, filepath.Join(r.opts.StateDir, "data"), r.log)
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", r.serveStatus)
	mux.HandleFunc("PUT /faults", r.serveFaults)
	mux.HandleFunc("GET /autoscaling", r.serveAutoscaling)
	mux.HandleFunc("GET /autoscaling/replay", r.serveReplay)
	if r.opts.Debug {
		// Profiles of the runtime itself: kfake, dispatchers, proxies.
		httpserver.Profiles(mux)
	}
	mux.Handle("/", http.HandlerFunc(r.serveBrokers))
	r.ingress = httpserver.New(mux)
	// Served once the data plane exists: until then the listener only
	// queues connections, so /status and the Brokers never see a nil plane.
	defer func() {
		if err == nil {
			go func() { _ = r.ingress.Serve(lis) }()
		} else {
			_ = lis.Close()
		}
	}()

	asConfig, err := r.autoscalerConfig()
	if err != nil {
		return err
	}
	if err := r.startMetrics(ctx, dataDir); err != nil {
		return err
	}
	servingConfig := serving.Config{BinDir: filepath.Join(r.opts.StateDir, "bin"), LogDir: filepath.Join(r.opts.StateDir, "logs"),
		Debug: r.opts.Debug, Autoscaler: asConfig, Meter: r.telemetry.MeterProvider(), Log: r.log,
		NoMetrics: r.opts.NoMetrics}
	if r.prometheus != nil {
		servingConfig.Scraped = r.prometheus.Scraped
	}
	for _, s := range r.set.Services {
		svc, err := serving.NewService(s, servingConfig)
		if err != nil {
			return err
		}
		if err := svc.Listen("127.0.0.1:0"); err != nil {
			return err
		}
		r.services[s.Name] = svc
	}
	local := here{services: map[string]string{}, stores: map[string]string{}, kafka: r.kafka.Brokers(), rabbit: r.rabbit.URL(), broker: r.brokerURL}
	storeSecrets := map[string]string{}
	for name, svc := range r.services {
		local.services[name] = svc.URL()
	}
	for name, kv := range r.stores {
		local.stores[name] = kv.Addr()
		maps.Copy(storeSecrets, kv.Secrets())
	}
	rewrite := clusterRewriter(r.set, local)
	secrets := localSecrets(r.set, storeSecrets, r.rabbit.URL())
	for _, s := range r.set.Services {
		env, err := serviceEnv(s, r.set, rewrite, secrets, r.opts.RabbitPrefix)
		if err != nil {
			return err
		}
		r.services[s.Name].SetEnv(env)
	}
	if r.dashboard, err = startDashboard(r.opts.Root, r.opts.DashboardAddr, rewrite, secrets, r.promSource(), r.log); err != nil {
		return err
	}

	flags, err := manifest.ReleaseFeatures(r.opts.Root)
	if err != nil {
		return err
	}
	if r.plane, err = eventing.New(eventing.Config{Set: r.set, IngressURL: r.brokerURL, Kafka: r.kafka.Brokers(), RabbitURL: r.rabbit.URL(),
		RabbitPrefix: r.opts.RabbitPrefix, Features: flags, Resolve: r.resolve, Meter: r.telemetry.MeterProvider(), Log: r.log}); err != nil {
		return err
	}
	r.dispatchWG.Go(func() { r.plane.Run(ctx) })
	if r.kafka.Embedded() {
		r.dispatchWG.Go(func() { r.kafka.WatchRetention(ctx, eventing.ConsumerGroups(r.set), r.log) })
	}
	if r.prometheus != nil {
		r.dispatchWG.Go(func() { r.followReplicas(ctx) })
	}
	// Each revision starts at its initial scale, then its KPA decides.
	for _, svc := range r.services {
		svc.ScaleToInitial()
		r.dispatchWG.Go(func() { svc.Run(ctx) })
	}
	return r.writeEndpoints()
}

// shutdownTimeout bounds the wait of the ingress and of each Service's
// endpoint for the requests in flight. A replica then gets its revision's
// timeout and a store server its grace period, as a kubelet gives a pod.
const shutdownTimeout = time.Minute

// stop stops, in order, the ingress (a Ctrl-C accepts nothing more), the
// dispatchers, the Services (each drains) and the servers the runtime
// started.
func (r *runtime) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if r.ingress != nil {
		_ = r.ingress.Shutdown(ctx)
	}
	r.dispatchWG.Wait()
	var wg sync.WaitGroup
	stopped := 0
	for _, s := range r.services {
		stopped += len(s.Status().PIDs)
		wg.Go(func() { s.Stop(ctx) })
	}
	wg.Wait()
	if r.dashboard != nil {
		r.dashboard.close(ctx)
	}
	if r.plane != nil {
		r.plane.Close()
	}
	for _, kv := range r.stores {
		if kv.PID() != 0 {
			stopped++
		}
		wg.Go(kv.Close)
	}
	wg.Wait()
	if r.prometheus != nil {
		stopped++
		r.prometheus.Close()
	}
	if r.telemetry != nil {
		_ = r.telemetry.Close(ctx)
	}
	if r.kafka != nil {
		r.kafka.Close()
	}
	_ = os.Remove(filepath.Join(r.opts.StateDir, EndpointsFile))
	// The queues stay, with what they hold, as a cluster's outlive its pods.
	if r.rabbit != nil {
		r.rabbit.Close(r.log)
	}
	fmt.Printf("clima dev stopped: %d processes it had started are stopped, nothing is left running\n", stopped)
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
	return serving.AutoscalerConfig(data)
}

// lockState makes the state folder one runtime's: two runtimes on one
// folder would write the same Kafka, Redis and Valkey data.
func lockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(f.Name())
		f.Close()
		return nil, fmt.Errorf("another clima dev (pid %s) runs with the state folder %s: stop it, or pass -state and -rabbitmq-prefix (they would share the RabbitMQ queues otherwise)", strings.TrimSpace(string(owner)), dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { _ = f.Close() }, nil
}
