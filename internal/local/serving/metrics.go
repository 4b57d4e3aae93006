package serving

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/apis/serving"
	servingmetrics "knative.dev/serving/pkg/metrics"
)

// kpaScope is the instrumentation scope of Knative's autoscaler and KPA
// reconciler (kpa/metrics.go's scopeName).
const kpaScope = "knative.dev/serving/pkg/autoscaler"

// revisionAttributes are the attributes Knative attaches to a revision's
// autoscaling instruments: cmd/autoscaler's for the KPA's own, the KPA
// reconciler's reportMetrics for the pod counts.
func revisionAttributes(pa *v1alpha1.PodAutoscaler) attribute.Set {
	return attribute.NewSet(
		servingmetrics.K8sNamespaceKey.With(pa.Namespace),
		servingmetrics.RevisionNameKey.With(pa.Name),
		servingmetrics.ServiceNameKey.With(pa.Labels[serving.ServiceLabelKey]),
		servingmetrics.ConfigurationNameKey.With(pa.Labels[serving.ConfigurationLabelKey]),
	)
}

// podMetrics are the KPA reconciler's pod counts, under its names, units
// and attributes: its kpaMetrics is not exported, so they are recorded
// here. Locally a replica starting is not ready, one draining is
// terminating, and none is ever pending (nothing schedules a process).
type podMetrics struct {
	requested, count, notReady, pending, terminating metric.Int64Gauge
	attrs                                            metric.MeasurementOption
}

func newPodMetrics(mp metric.MeterProvider, attrs attribute.Set) *podMetrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	meter := mp.Meter(kpaScope)
	gauge := func(name, description string) metric.Int64Gauge {
		// An error is for a malformed name only; the instrument is then a no-op.
		g, _ := meter.Int64Gauge(name, metric.WithDescription(description), metric.WithUnit("{pod}"))
		return g
	}
	return &podMetrics{
		requested:   gauge("kn.revision.pods.requested", "Number of pods autoscaler requested from Kubernetes"),
		count:       gauge("kn.revision.pods.count", "Number of pods that are allocated currently"),
		notReady:    gauge("kn.revision.pods.not_ready.count", "Number of pods that are not ready currently"),
		pending:     gauge("kn.revision.pods.pending.count", "Number of pods that are pending currently"),
		terminating: gauge("kn.revision.pods.terminating.count", "Number of pods that are terminating currently"),
		attrs:       metric.WithAttributeSet(attrs),
	}
}

// record is the reconciler's Record of the replicas wanted (within the
// bounds) and those running, starting and draining.
func (m *podMetrics) record(want int32, ready, starting, draining int) {
	ctx := context.Background()
	m.requested.Record(ctx, int64(want), m.attrs)
	m.count.Record(ctx, int64(ready), m.attrs)
	m.notReady.Record(ctx, int64(starting), m.attrs)
	m.pending.Record(ctx, 0, m.attrs)
	m.terminating.Record(ctx, int64(draining), m.attrs)
}

// recordPods records the Service's pod counts now. s.mu must be held.
func (s *Service) recordPods() {
	if s.pods != nil {
		s.pods.record(s.desired, len(s.ready), s.starting, len(s.draining))
	}
}

// MetricsTargets are the addresses where the Service's replicas serve
// their metrics, those draining too.
func (s *Service) MetricsTargets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	targets := make([]string, 0, len(s.ready)+len(s.draining))
	for _, p := range s.ready {
		targets = append(targets, p.metricsAddr)
	}
	for p := range s.draining {
		targets = append(targets, p.metricsAddr)
	}
	return targets
}

// finalScrapeTimeout bounds the wait for a replica's last scrape.
const finalScrapeTimeout = 10 * time.Second

// lastScrape waits, up to finalScrapeTimeout, for the scraper to read a
// drained replica once more, so that what it counted after its previous
// scrape is not lost with it.
func (s *Service) lastScrape(p *process) {
	s.mu.Lock()
	stopped := s.stopped // clima dev is stopping: Prometheus stops too
	s.mu.Unlock()
	if s.scraped == nil || stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalScrapeTimeout)
	defer cancel()
	if err := s.scraped(ctx, p.metricsAddr, time.Now()); err != nil {
		s.log.Warn("replica stopped before its last scrape", "pid", p.cmd.Process.Pid, "error", err)
	}
}
