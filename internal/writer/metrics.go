package writer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// BrokerKey is the attribute that names a writer's broker.
const BrokerKey = attribute.Key("clima.broker")

// metrics are a writer service's instruments, recorded once per publish.
type metrics struct {
	reports  metric.Int64Counter
	duration metric.Float64Histogram
	ok, fail metric.MeasurementOption
}

func newMetrics(broker string) *metrics {
	// The global MeterProvider, which the function runtime sets; see
	// consume's newMetrics.
	meter := otel.Meter("github.com/clima-dev/clima/internal/writer")
	m := &metrics{
		ok:   metric.WithAttributeSet(attribute.NewSet(BrokerKey.String(broker))),
		fail: metric.WithAttributeSet(attribute.NewSet(BrokerKey.String(broker), attribute.String("error.type", "unavailable"))),
	}
	m.reports, _ = meter.Int64Counter("clima.reports.published", metric.WithUnit("{report}"),
		metric.WithDescription("Reports the broker durably took"))
	m.duration, _ = meter.Float64Histogram("clima.broker.duration", metric.WithUnit("s"),
		metric.WithDescription("One publish of a batch to the broker, until it confirmed every message"))
	return m
}

func (m *metrics) published(ctx context.Context, reports int, start time.Time, err error) {
	if err != nil {
		m.duration.Record(ctx, time.Since(start).Seconds(), m.fail)
		return
	}
	m.duration.Record(ctx, time.Since(start).Seconds(), m.ok)
	m.reports.Add(ctx, int64(reports), m.ok)
}
