package eventing

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/eventing/pkg/kncloudevents"
	"knative.dev/eventing/pkg/observability"
	"knative.dev/eventing/pkg/tracing"
)

// brokerScope is the instrumentation scope of Knative's Broker filter,
// whose dispatch instrument clima dev records (pkg/broker/filter's
// ScopeName); the Broker is not run here, so its handler records nothing.
const brokerScope = "knative.dev/eventing/pkg/broker/filter"

// dispatchBounds are the filter handler's latencyBounds (unexported).
var dispatchBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// newDispatchDuration is Knative's kn.eventing.dispatch.duration.
func newDispatchDuration(mp metric.MeterProvider) metric.Float64Histogram {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	// An error is for a malformed name only; the instrument is then a no-op.
	h, _ := mp.Meter(brokerScope).Float64Histogram("kn.eventing.dispatch.duration",
		metric.WithDescription("The duration to dispatch the event"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(dispatchBounds...))
	return h
}

// triggerLabels are the attributes Knative's filter handler puts on a
// Trigger's delivery (WithMessagingLabels, WithBrokerLabels, the request's
// scheme); the event's type and the answer's status are added per event.
func triggerLabels(namespace, name, broker string) []attribute.KeyValue {
	return []attribute.KeyValue{
		observability.MessagingDestinationName.With(tracing.TriggerMessagingDestination(types.NamespacedName{Namespace: namespace, Name: name})),
		observability.MessagingOperationName.With("send"),
		observability.MessagingSystem.With(observability.KnativeMessagingSystem),
		observability.BrokerName.With(broker),
		observability.BrokerNamespace.With(namespace),
		observability.RequestScheme.With("http"),
	}
}

// sourceLabels are a source's: Knative's source attributes, as the
// sources' dispatchers (not served here) would name themselves.
func sourceLabels(namespace, name, resource string) []attribute.KeyValue {
	return []attribute.KeyValue{
		observability.SourceName.With(name),
		observability.SourceNamespace.With(namespace),
		observability.SourceResourceGroup.With(resource),
		observability.MessagingOperationName.With("send"),
		observability.MessagingSystem.With(observability.KnativeMessagingSystem),
		observability.RequestScheme.With("http"),
	}
}

// maxDispatchTypes bounds the attribute sets (event type × status) one
// Trigger's or source's deliveries are recorded with; past it a new type is
// "other": a Trigger without a type filter passes whatever type a client
// sends, and a label's values must be bounded.
const maxDispatchTypes = 32

// dispatchSets are the attribute sets of one policy's deliveries, made once
// for each event type and status.
type dispatchSets struct {
	sets  sync.Map // dispatchKey → metric.MeasurementOption
	types atomic.Int32
}

// recordDispatch records one delivery of e, its retries included, as the
// filter handler does: the dispatcher's duration and the answer's status.
func (s *sender) recordDispatch(ctx context.Context, p policy, e *event.Event, info *kncloudevents.DispatchInfo) {
	if info == nil || info.Duration < 0 {
		return // not sent: the request could not be made
	}
	key := dispatchKey{e.Type(), info.ResponseCode}
	opt, ok := p.recorded.sets.Load(key)
	if !ok && p.recorded.types.Add(1) > maxDispatchTypes {
		key.eventType = "other"
		opt, ok = p.recorded.sets.Load(key)
	}
	if !ok {
		attrs := make([]attribute.KeyValue, 0, len(p.labels)+2)
		attrs = append(attrs, p.labels...)
		attrs = append(attrs, observability.CloudEventType.With(key.eventType), semconv.HTTPResponseStatusCode(key.status))
		opt, _ = p.recorded.sets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
	s.dispatch.Record(ctx, info.Duration.Seconds(), opt.(metric.MeasurementOption))
}

type dispatchKey struct {
	eventType string
	status    int
}
