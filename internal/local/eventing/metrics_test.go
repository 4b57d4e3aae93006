package eventing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"knative.dev/eventing/pkg/kncloudevents"
	"knative.dev/eventing/pkg/observability"
)

// TestDispatchMetricIsBounded: every delivery is recorded under Knative's
// kn.eventing.dispatch.duration with the Trigger's attributes, its event
// type and status; past maxDispatchTypes attribute sets a new type counts
// as "other", so a client's types cannot grow the series without bound.
func TestDispatchMetricIsBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	s := newSender(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), quiet)
	p, err := newPolicy(nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.labels = triggerLabels("clima", "ingest", "default")
	const types = maxDispatchTypes + 8
	for i := range types {
		e := testEvent()
		e.SetType(fmt.Sprintf("client.type.%d", i))
		s.recordDispatch(context.Background(), p, e, &kncloudevents.DispatchInfo{Duration: time.Millisecond, ResponseCode: 202})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "kn.eventing.dispatch.duration" || sm.Scope.Name != brokerScope {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				typ, _ := dp.Attributes.Value(attribute.Key(observability.CloudEventType))
				dest, _ := dp.Attributes.Value("messaging.destination.name")
				if dest.AsString() != "trigger:ingest.clima" {
					t.Errorf("a point of %s for %q", typ.AsString(), dest.AsString())
				}
				counts[typ.AsString()] += dp.Count
			}
		}
	}
	if len(counts) != maxDispatchTypes+1 || counts["other"] != types-maxDispatchTypes {
		t.Fatalf("%d attribute sets, %d deliveries as other: want %d and %d", len(counts), counts["other"], maxDispatchTypes+1, types-maxDispatchTypes)
	}
}
