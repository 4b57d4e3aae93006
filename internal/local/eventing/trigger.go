package eventing

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// trigger dispatches the Broker's events that pass its filter to its
// subscriber, and appends replies to the Broker's topic.
type trigger struct {
	name       string
	filter     eventfilter.Filter // nil: every event passes
	subscriber duckv1.Addressable
	policy     policy
	broker     *broker
	sender     *sender
	counters
}

func (t *trigger) handle(ctx context.Context, m kafka.Message) bool {
	ev, err := recordAsCloudEvent(m, recordHeaders(m))
	if err != nil {
		t.broker.log.Error("undecodable record on the broker topic", "offset", m.Offset, "error", err)
		return true
	}
	if t.filter != nil && t.filter.Filter(ctx, *ev) == eventfilter.FailFilter {
		t.filtered.Add(1)
		return true
	}
	t.inFlight.Add(1)
	defer t.inFlight.Add(-1)
	result, done := t.sender.deliverAll(ctx, t.subscriber, ev, t.policy, t.broker)
	if done {
		t.count(result)
	}
	return done
}

// triggerFilter is the filter a Trigger runs, chosen as Knative's broker
// chooses it: filters when set, else filter.attributes, else none (every
// event passes; pkg/broker/filter/filter_handler.go, filterEvent).
func triggerFilter(spec eventingv1.TriggerSpec) eventfilter.Filter {
	switch {
	case len(spec.Filters) > 0:
		return subscriptionsapi.CreateSubscriptionsAPIFilters(zap.NewNop(), spec.Filters)
	case spec.Filter != nil:
		return attributes.NewAttributesFilter(spec.Filter.Attributes)
	}
	return nil
}
