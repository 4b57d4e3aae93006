package serving

import (
	"fmt"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelmetric "go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/serving/pkg/apis/autoscaling"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	"knative.dev/serving/pkg/autoscaler/metrics"
	"knative.dev/serving/pkg/autoscaler/scaling"
	kparesources "knative.dev/serving/pkg/reconciler/autoscaling/kpa/resources"
	asresources "knative.dev/serving/pkg/reconciler/autoscaling/resources"
)

// scaleTick is how often Knative's autoscaler decides (its multiscaler's
// tick interval).
const scaleTick = 2 * time.Second

// AutoscalerConfig reads the settings of Knative's config-autoscaler
// ConfigMap ("stable-window": "6s", …); nil or empty keeps Knative's
// defaults.
func AutoscalerConfig(data map[string]string) (*autoscalerconfig.Config, error) {
	cfg, err := asconfig.NewConfigFromMap(data)
	if err != nil {
		return nil, fmt.Errorf("autoscaler config: %w", err)
	}
	return cfg, nil
}

// podAutoscaler is what Knative makes of a Service's revision: the
// PodAutoscaler with the revision template's annotations.
func podAutoscaler(s *servingv1.Service) *autoscalingv1alpha1.PodAutoscaler {
	annotations := map[string]string{autoscaling.ClassAnnotationKey: autoscaling.KPA}
	for k, v := range s.Spec.Template.Annotations {
		annotations[k] = v
	}
	var cc int64
	if s.Spec.Template.Spec.ContainerConcurrency != nil {
		cc = *s.Spec.Template.Spec.ContainerConcurrency
	}
	return &autoscalingv1alpha1.PodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-00001", Annotations: annotations,
			// As Knative's controllers label a revision's PodAutoscaler.
			Labels: map[string]string{serving.ServiceLabelKey: s.Name, serving.ConfigurationLabelKey: s.Name}},
		Spec: autoscalingv1alpha1.PodAutoscalerSpec{
			ContainerConcurrency: cc,
			Reachability:         autoscalingv1alpha1.ReachabilityReachable,
		},
	}
}

// Decision is one tick of a Service's autoscaler: what it measured and
// what Knative's KPA decided.
type Decision struct {
	Time time.Time `json:"time"`
	// Stable and Panic are the observed concurrency (or requests per
	// second) averaged over the stable and the panic window.
	Stable float64 `json:"stable"`
	Panic  float64 `json:"panic"`
	// Ready is how many replicas were ready when the KPA decided.
	Ready int `json:"ready"`
	// KPA is what scaling's Scale returned (-1: no decision, no data yet);
	// Desired is it within min-scale and max-scale, after the grace period
	// for a scale to zero.
	KPA     int32 `json:"kpa"`
	Desired int32 `json:"desired"`
	// Panicking is whether the KPA was in panic mode after this tick.
	Panicking bool `json:"panicking"`
}

// maxDecisions bounds a Service's recorded decisions (an hour of ticks).
const maxDecisions = 1800

// autoscaler decides a Service's replicas with Knative's own KPA
// (knative.dev/serving/pkg/autoscaler/scaling), fed with the concurrency
// and request rate its local endpoint measures, as queue-proxy and the
// activator feed it in a cluster.
type autoscaler struct {
	key       types.NamespacedName
	spec      scaling.DeciderSpec
	min, max  int32
	grace     time.Duration
	collector *metrics.MetricCollector
	scaler    scaling.UniScaler
	ready     func() int
	attrs     attribute.Set // the revision's, on every instrument

	// seen is what the KPA read during the tick in progress: the ready
	// replicas (fixed for the tick) and the metric values it got.
	seen struct {
		ready         int
		stable, panic float64
	}

	mu         sync.Mutex
	zeroSince  time.Time // when the KPA first wanted zero, in the current run of zeros
	panicSince time.Time // when the load last crossed the panic threshold
	decisions  []Decision
}

// noLog keeps the KPA's own logging out of clima dev's output.
var noLog = zap.NewNop().Sugar()

// newAutoscaler builds the KPA of Service s, measuring through probe.
func newAutoscaler(s *servingv1.Service, cfg *autoscalerconfig.Config, probe *loadProbe, ready func() int, mp otelmetric.MeterProvider) (*autoscaler, error) {
	pa := podAutoscaler(s) // its annotations pass Knative's validation (internal/manifest's tests)
	decider := kparesources.MakeDecider(pa, cfg)
	metric := asresources.MakeMetric(pa, "local", cfg)
	collector := metrics.NewMetricCollector(func(*autoscalingv1alpha1.Metric, *zap.SugaredLogger) (metrics.StatsScraper, error) {
		return probe, nil
	}, noLog)
	if err := collector.CreateOrUpdate(metric); err != nil {
		return nil, err
	}
	minScale, maxScale := pa.ScaleBounds(cfg)
	a := &autoscaler{
		key:  types.NamespacedName{Namespace: pa.Namespace, Name: pa.Name},
		spec: decider.Spec, min: minScale, max: maxScale, grace: cfg.ScaleToZeroGracePeriod,
		collector: collector, ready: ready, attrs: revisionAttributes(pa),
	}
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	a.scaler = scaling.New(a.attrs, mp, pa.Namespace, pa.Name, (*seenMetrics)(a), (*seenReady)(a), &a.spec)
	return a, nil
}

// seenMetrics hands the KPA the collector's averages and keeps what it
// handed, so that a Decision records exactly the KPA's inputs.
type seenMetrics autoscaler

func (m *seenMetrics) StableAndPanicConcurrency(key types.NamespacedName, now time.Time) (float64, float64, error) {
	stableValue, panicValue, err := m.collector.StableAndPanicConcurrency(key, now)
	m.seen.stable, m.seen.panic = stableValue, panicValue
	return stableValue, panicValue, err
}

func (m *seenMetrics) StableAndPanicRPS(key types.NamespacedName, now time.Time) (float64, float64, error) {
	stableValue, panicValue, err := m.collector.StableAndPanicRPS(key, now)
	m.seen.stable, m.seen.panic = stableValue, panicValue
	return stableValue, panicValue, err
}

// seenReady counts the ready replicas for the KPA: the count taken at the
// start of the tick.
type seenReady autoscaler

func (r *seenReady) ReadyCount() (int, error)    { return r.seen.ready, nil }
func (r *seenReady) NotReadyCount() (int, error) { return 0, nil }

// initialScale is how many replicas a new revision starts with: its
// initial-scale within its bounds, as the PodAutoscaler reconciler starts it.
func (a *autoscaler) initialScale() int32 {
	n := max(a.spec.InitialScale, a.min)
	if a.max > 0 {
		n = min(n, a.max)
	}
	return n
}

// decide runs one tick of the KPA and returns the replicas to run. Ticks
// come from one goroutine.
func (a *autoscaler) decide(now time.Time) Decision {
	a.seen.ready = a.ready()
	a.seen.stable, a.seen.panic = 0, 0
	res := a.scaler.Scale(noLog, now)
	d := Decision{Time: now, Ready: a.seen.ready, Stable: a.seen.stable, Panic: a.seen.panic, KPA: -1}
	if res.ScaleValid {
		d.KPA = res.DesiredPodCount
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d.Desired = a.bound(d.KPA, d.Ready, now)
	d.Panicking = a.panicking(d)
	a.decisions = append(a.decisions, d)
	if len(a.decisions) > maxDecisions {
		a.decisions = a.decisions[len(a.decisions)-maxDecisions:]
	}
	return d
}

// bound applies what Knative's PodAutoscaler reconciler adds to the KPA's
// number: min-scale and max-scale, and a scale to zero only once the KPA
// has wanted zero for the grace period. No decision keeps the replicas as
// they are. a.mu must be held.
func (a *autoscaler) bound(kpa int32, ready int, now time.Time) int32 {
	desired := kpa
	if desired < 0 {
		desired = int32(ready)
	}
	desired = max(desired, a.min)
	if a.max > 0 {
		desired = min(desired, a.max)
	}
	if desired > 0 || ready == 0 {
		a.zeroSince = time.Time{}
		return desired
	}
	if a.zeroSince.IsZero() {
		a.zeroSince = now
	}
	if now.Sub(a.zeroSince) < a.grace {
		return 1 // the last replica stays for the grace period
	}
	return 0
}

// panicking follows the KPA's panic mode as scaling.autoscaler keeps it
// (its own state is not exported): it starts when the panic window's load
// needs PanicThreshold × the ready replicas, and ends a stable window after
// the load last did. a.mu must be held.
func (a *autoscaler) panicking(d Decision) bool {
	if d.KPA < 0 || a.spec.TargetValue <= 0 {
		return !a.panicSince.IsZero()
	}
	over := math.Ceil(d.Panic/a.spec.TargetValue)/math.Max(1, float64(d.Ready)) >= a.spec.PanicThreshold
	switch {
	case over:
		a.panicSince = d.Time
	case !a.panicSince.IsZero() && a.panicSince.Add(a.spec.StableWindow).Before(d.Time):
		a.panicSince = time.Time{}
	}
	return !a.panicSince.IsZero()
}

// history returns the decisions so far, oldest first.
func (a *autoscaler) history() []Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Decision(nil), a.decisions...)
}

func (a *autoscaler) close() { a.collector.Delete(a.key.Namespace, a.key.Name) }

// loadProbe measures a Service's load as queue-proxy and the activator
// report it: the time-weighted average of requests in flight (those that
// wait for a replica too) and the requests per second, over each scrape.
type loadProbe struct {
	mu          sync.Mutex
	inFlight    int
	since       time.Time // of the last change of inFlight
	integral    float64   // request·seconds since the last scrape
	requests    float64   // requests started since the last scrape
	lastScraped time.Time
}

func newLoadProbe(now time.Time) *loadProbe { return &loadProbe{since: now, lastScraped: now} }

func (p *loadProbe) advance(now time.Time) {
	p.integral += float64(p.inFlight) * now.Sub(p.since).Seconds()
	p.since = now
}

// begin and end bracket one request.
func (p *loadProbe) begin(now time.Time) {
	p.mu.Lock()
	p.advance(now)
	p.inFlight++
	p.requests++
	p.mu.Unlock()
}

func (p *loadProbe) end(now time.Time) {
	p.mu.Lock()
	p.advance(now)
	p.inFlight--
	p.mu.Unlock()
}

// Scrape is the KPA collector's scrape (metrics.StatsScraper): the average
// concurrency and the request rate since the previous scrape.
func (p *loadProbe) Scrape(time.Duration) (metrics.Stat, error) {
	return p.scrape(time.Now()), nil
}

func (p *loadProbe) scrape(now time.Time) metrics.Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(now)
	elapsed := now.Sub(p.lastScraped).Seconds()
	if elapsed <= 0 {
		return metrics.Stat{PodName: "local"}
	}
	st := metrics.Stat{
		PodName:                   "local",
		AverageConcurrentRequests: p.integral / elapsed,
		RequestCount:              p.requests / elapsed,
	}
	p.integral, p.requests, p.lastScraped = 0, 0, now
	return st
}

// replay feeds a fresh KPA with the autoscaler's spec the inputs of each
// recorded tick, and returns a line for every tick where it decides other
// than the recorded KPA did.
func (a *autoscaler) replay(recorded []Decision) []string {
	spec := a.spec
	inputs := &replayInputs{}
	kpa := scaling.New(attribute.NewSet(), noop.NewMeterProvider(), a.key.Namespace, a.key.Name, inputs, inputs, &spec)
	var mismatches []string
	for i, dec := range recorded {
		inputs.dec = dec
		got := int32(-1)
		if res := kpa.Scale(noLog, dec.Time); res.ScaleValid {
			got = res.DesiredPodCount
		}
		if got != dec.KPA {
			mismatches = append(mismatches, fmt.Sprintf("tick %d (%s): for stable %.2f, panic %.2f, %d ready the KPA decides %d; recorded %d",
				i, dec.Time.Format(time.TimeOnly), dec.Stable, dec.Panic, dec.Ready, got, dec.KPA))
		}
	}
	return mismatches
}

// replayInputs is what the KPA measured at one recorded tick; a tick
// without a decision had no data yet.
type replayInputs struct{ dec Decision }

func (r *replayInputs) StableAndPanicConcurrency(types.NamespacedName, time.Time) (float64, float64, error) {
	if r.dec.KPA < 0 {
		return 0, 0, metrics.ErrNoData
	}
	return r.dec.Stable, r.dec.Panic, nil
}

func (r *replayInputs) StableAndPanicRPS(key types.NamespacedName, now time.Time) (float64, float64, error) {
	return r.StableAndPanicConcurrency(key, now)
}

func (r *replayInputs) ReadyCount() (int, error)    { return r.dec.Ready, nil }
func (r *replayInputs) NotReadyCount() (int, error) { return 0, nil }
