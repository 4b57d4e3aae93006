package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/clima-dev/clima/internal/httpserver"
	apisconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
)

// Service is one Knative Service run locally: an endpoint that stays up
// (as the activator and the Service's address do in a cluster) in front of
// its replicas, each a process of the function. How many replicas run is
// Knative's KPA's decision (autoscale.go), fed with the load the
// endpoint measures; requests go to the ready replica with the
// fewest in flight, and wait, as the activator makes them wait, while there
// is none.
type Service struct {
	name      string
	binary    string
	env       []string
	grpc      bool          // the port is h2c: probe with gRPC health, proxy HTTP/2
	debug     bool          // processes serve Go's profiles (DEBUG_ADDR)
	noMetrics bool          // processes export no metrics
	grace     time.Duration // SIGTERM to SIGKILL, as the kubelet allows a pod
	log       *slog.Logger
	dir       string // where process logs go

	endpoint *http.Server
	url      string // the local endpoint, http://127.0.0.1:port

	load    *loadProbe
	scaler  *autoscaler
	pods    *podMetrics // nil for the tests' Services without a KPA
	scraped ScrapedFunc // nil when nothing scrapes the replicas

	mu        sync.Mutex
	cond      *sync.Cond
	ready     []*process        // serving, least loaded first when picked
	draining  map[*process]bool // scaled down, finishing their requests
	starting  int               // replicas being started
	desired   int32             // the latest decision
	coldStart time.Duration     // of the latest start
	starts    int
	exits     int   // processes that exited unasked (crashed, killed)
	startErr  error // of the latest start
	stopped   bool
}

// Config is how the runtime runs every Service.
type Config struct {
	// BinDir holds each function's binary, named after its Service.
	BinDir string
	// LogDir is where each replica's output goes.
	LogDir string
	// Debug makes every replica serve Go's profiles (DEBUG_ADDR).
	Debug bool
	// Autoscaler is Knative's config-autoscaler.
	Autoscaler *autoscalerconfig.Config
	// Meter records the KPA's instruments and the pod counts, as Knative's
	// autoscaler and KPA reconciler do; nil records nothing.
	Meter metric.MeterProvider
	// Scraped, when set, is waited for before a drained replica stops.
	Scraped ScrapedFunc
	// NoMetrics makes every replica export none (METRICS_PROTOCOL=none).
	NoMetrics bool
	Log       *slog.Logger
}

// ScrapedFunc returns once the replica serving metrics at addr was scraped
// after the time given, or when ctx ends (with its error).
type ScrapedFunc func(ctx context.Context, addr string, after time.Time) error

// NewService is the Service of manifest s, with a KPA built as Knative
// builds it from the revision's annotations; it runs no replica before
// Listen and Run.
func NewService(s *servingv1.Service, cfg Config) (*Service, error) {
	svc := newService(s.Name, filepath.Join(cfg.BinDir, s.Name), nil, isGRPC(s), cfg.LogDir, cfg.Log)
	svc.debug, svc.scraped, svc.noMetrics = cfg.Debug, cfg.Scraped, cfg.NoMetrics
	// A pod's grace period is its revision's timeout (Knative's
	// resources.BuildPodSpec), Knative's default one when it sets none.
	timeout := int64(apisconfig.DefaultRevisionTimeoutSeconds)
	if t := s.Spec.Template.Spec.TimeoutSeconds; t != nil {
		timeout = *t
	}
	svc.grace = time.Duration(timeout) * time.Second
	var err error
	if svc.scaler, err = newAutoscaler(s, cfg.Autoscaler, svc.load, svc.readyCount, cfg.Meter); err != nil {
		return nil, err
	}
	svc.pods = newPodMetrics(cfg.Meter, svc.scaler.attrs)
	return svc, nil
}

// isGRPC says whether a Service's port is h2c: probed with gRPC health,
// proxied over HTTP/2.
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

func newService(name, binary string, env []string, grpcPort bool, dir string, log *slog.Logger) *Service {
	s := &Service{name: name, binary: binary, env: env, grpc: grpcPort, dir: dir, log: log.With("service", name),
		grace:    time.Duration(apisconfig.DefaultRevisionTimeoutSeconds) * time.Second,
		draining: map[*process]bool{}, load: newLoadProbe(time.Now())}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Listen opens the Service's local endpoint.
func (s *Service) Listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s: %w", s.name, err)
	}
	s.url = "http://" + lis.Addr().String()
	s.endpoint = httpserver.New(http.HandlerFunc(s.serve))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.endpoint.Protocols = &protocols
	go func() { _ = s.endpoint.Serve(lis) }()
	return nil
}

// serve holds a request until a replica is ready, as the activator does,
// then proxies it.
func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	p, err := s.acquire(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.release(p)
	p.proxy.ServeHTTP(w, r)
}

// acquire picks the ready replica with the fewest requests in flight,
// waiting for one while there is none. A request that finds no replica and
// none starting starts one at once: the activator's poke of the autoscaler.
func (s *Service) acquire(ctx context.Context) (*process, error) {
	s.load.begin(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	for waited := false; ; waited = true {
		switch {
		case s.stopped:
			s.load.end(time.Now())
			return nil, errors.New("clima dev is stopping")
		case len(s.ready) > 0:
			p := s.ready[0]
			for _, q := range s.ready[1:] {
				if q.inFlight < p.inFlight {
					p = q
				}
			}
			p.inFlight++
			return p, nil
		case waited && s.starting == 0 && s.startErr != nil:
			s.load.end(time.Now())
			return nil, s.startErr
		case s.starting == 0:
			s.startErr = nil
			s.startReplica()
		}
		if ctx.Err() != nil {
			s.load.end(time.Now())
			return nil, ctx.Err()
		}
		s.cond.Wait()
	}
}

// release ends a request that acquire gave to p.
func (s *Service) release(p *process) {
	s.load.end(time.Now())
	s.mu.Lock()
	p.inFlight--
	if p.inFlight == 0 && s.draining[p] {
		s.cond.Broadcast() // its drain may end
	}
	s.mu.Unlock()
}

// startReplica starts one more replica in the background. s.mu must be held.
func (s *Service) startReplica() {
	s.starting++
	go s.start()
}

// scale brings the replicas to n: it starts what is missing and drains
// the least loaded of those in excess.
func (s *Service) scale(n int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.desired = n
	for have := len(s.ready) + s.starting; have < int(n); have++ {
		s.startReplica()
	}
	for len(s.ready) > int(n) {
		i := 0
		for j, q := range s.ready {
			if q.inFlight < s.ready[i].inFlight {
				i = j
			}
		}
		p := s.ready[i]
		s.ready = append(s.ready[:i:i], s.ready[i+1:]...)
		s.draining[p] = true
		go s.drain(p)
	}
	s.recordPods()
}

// drainQuietPeriod is how long a scaled-down replica may finish its
// requests before it is stopped anyway: queue-proxy's drain
// (drainSleepDuration in knative.dev/serving pkg/queue/sharedmain,
// unexported).
const drainQuietPeriod = 30 * time.Second

// drain stops a replica once the requests it has finish; new ones no
// longer reach it. It waits drainQuietPeriod at most, then stops it anyway.
func (s *Service) drain(p *process) {
	deadline := time.Now().Add(drainQuietPeriod)
	s.mu.Lock()
	for p.inFlight > 0 && time.Now().Before(deadline) {
		s.waitFor(time.Until(deadline))
	}
	s.mu.Unlock()
	s.lastScrape(p)
	s.log.Info("scaled down", "pid", p.cmd.Process.Pid)
	s.stopProcess(p)
	s.mu.Lock()
	delete(s.draining, p)
	s.recordPods()
	s.cond.Broadcast()
	s.mu.Unlock()
}

// waitFor waits on s.cond, for d at most. s.mu must be held.
func (s *Service) waitFor(d time.Duration) {
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	s.cond.Wait()
	t.Stop()
}

// URL is the Service's local endpoint, http://127.0.0.1:port.
func (s *Service) URL() string { return s.url }

// SetEnv sets the replicas' environment; call it before Run.
func (s *Service) SetEnv(env []string) { s.env = env }

// ScaleToInitial starts the revision's initial-scale replicas, in the
// background: call it once, before Run.
func (s *Service) ScaleToInitial() { s.scale(s.scaler.initialScale()) }

// Run lets the revision's KPA decide every tick until ctx ends.
func (s *Service) Run(ctx context.Context) { s.autoscale(ctx) }

// Decisions are the KPA's ticks so far.
func (s *Service) Decisions() []Decision { return s.scaler.history() }

// Replay feeds the ticks so far to a fresh KPA of the same spec, and says
// where it decides otherwise: none, when what ran is Knative's KPA alone.
func (s *Service) Replay() (ticks int, mismatches []string) {
	h := s.scaler.history()
	return len(h), s.scaler.replay(h)
}

// autoscale runs the KPA every tick until the runtime stops, and scales
// the replicas to its decision.
func (s *Service) autoscale(ctx context.Context) {
	tick := time.NewTicker(scaleTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.scale(s.scaler.decide(now).Desired)
		}
	}
}

// readyCount is how many replicas serve.
func (s *Service) readyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready)
}

// start runs a process and waits until it is ready.
func (s *Service) start() {
	p, took, err := s.run()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting--
	if err != nil {
		s.startErr = err
		s.log.Error("cold start failed", "error", err)
		s.cond.Broadcast()
		return
	}
	if s.stopped {
		go s.stopProcess(p)
		s.cond.Broadcast()
		return
	}
	s.ready = append(s.ready, p)
	s.coldStart = took
	s.starts++
	s.recordPods()
	s.log.Info("replica ready", "pid", p.cmd.Process.Pid, "ready_after", took.Round(time.Microsecond).String(), "replicas", len(s.ready))
	s.cond.Broadcast()
	go s.watch(p)
}

// Stop closes the endpoint and stops every replica.
func (s *Service) Stop(ctx context.Context) {
	s.mu.Lock()
	s.stopped = true
	replicas := s.ready
	s.ready = nil
	for p := range s.draining {
		replicas = append(replicas, p)
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	if s.endpoint != nil {
		_ = s.endpoint.Shutdown(ctx)
	}
	var wg sync.WaitGroup
	for _, p := range replicas {
		wg.Go(func() { s.stopProcess(p) })
	}
	wg.Wait()
	if s.scaler != nil {
		s.scaler.close()
	}
}
