package consume

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/clima-dev/clima/events"
)

// PathKey is the attribute that names a report's path, "kafka" or
// "rabbitmq", and so its store.
const PathKey = attribute.Key("clima.path")

// metrics are a consumer's instruments, recorded once per store call with
// attributes made once: nothing per report but a histogram's atomic add.
type metrics struct {
	stored, repeated metric.Int64Counter
	latency          metric.Float64Histogram
	duration         metric.Float64Histogram
	path, failed     metric.MeasurementOption
}

func newMetrics(path string) *metrics {
	// The global MeterProvider: the function runtime sets it before a
	// function is built. An instrument's error is for a malformed name
	// only, and the instrument is then a no-op: the tests read each name.
	meter := otel.Meter("github.com/clima-dev/clima/internal/consume")
	m := &metrics{
		path:   metric.WithAttributeSet(attribute.NewSet(PathKey.String(path))),
		failed: metric.WithAttributeSet(attribute.NewSet(PathKey.String(path), attribute.String("error.type", "store"))),
	}
	m.stored, _ = meter.Int64Counter("clima.reports.stored", metric.WithUnit("{report}"),
		metric.WithDescription("Reports stored for the first time"))
	m.repeated, _ = meter.Int64Counter("clima.reports.repeated", metric.WithUnit("{report}"),
		metric.WithDescription("Reports delivered again and dropped by the store as repeats"))
	bounds := make([]float64, len(events.LatencyBoundsMs))
	for i, ms := range events.LatencyBoundsMs {
		bounds[i] = float64(ms) / 1000
	}
	m.latency, _ = meter.Float64Histogram("clima.report.latency", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(bounds...),
		metric.WithDescription("From ingest's acceptance of a report to its store, in the stores' own latency buckets"))
	m.duration, _ = meter.Float64Histogram("clima.store.duration", metric.WithUnit("s"),
		metric.WithDescription("One round trip of a group of reports to the store"))
	return m
}

// saved records a store call of reports at storedAt that stored stored.
func (m *metrics) saved(ctx context.Context, reports []events.Report, stored int, storedAt time.Time, err error) {
	if err != nil {
		m.duration.Record(ctx, time.Since(storedAt).Seconds(), m.failed)
		return
	}
	m.duration.Record(ctx, time.Since(storedAt).Seconds(), m.path)
	m.stored.Add(ctx, int64(stored), m.path)
	m.repeated.Add(ctx, int64(len(reports)-stored), m.path)
	for _, r := range reports {
		m.latency.Record(ctx, events.Latency(r, storedAt).Seconds(), m.path)
	}
}
