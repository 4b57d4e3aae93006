package eventing

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/eventing/pkg/eventingtls"
	"knative.dev/eventing/pkg/kncloudevents"
	"knative.dev/eventing/pkg/kncloudevents/attributes"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// policy is how a dispatcher delivers: Knative's RetryConfig made from the
// object's DeliverySpec, its dead-letter sink, and the attributes its
// deliveries are recorded with.
type policy struct {
	retry      kncloudevents.RetryConfig
	deadLetter *duckv1.Addressable // nil when the object has none
	labels     []attribute.KeyValue
	recorded   *dispatchSets
}

// newPolicy builds a policy as Knative's dispatchers do, under the
// release's feature flags (a DeliverySpec's timeout and retryAfterMax count
// only when their flags are enabled); checkRetry, when set, replaces
// Knative's rule of which answers are retried.
func newPolicy(d *eventingduckv1.DeliverySpec, deadLetter *duckv1.Addressable, checkRetry kncloudevents.CheckRetry, flags feature.Flags) (policy, error) {
	retry := kncloudevents.NoRetries()
	if d != nil {
		spec := *d
		if !flags.IsEnabled(feature.DeliveryTimeout) {
			spec.Timeout = nil
		}
		if !flags.IsEnabled(feature.DeliveryRetryAfter) {
			spec.RetryAfterMax = nil
		}
		var err error
		if retry, err = kncloudevents.RetryConfigFromDeliverySpec(spec); err != nil {
			return policy{}, err
		}
	}
	if checkRetry != nil {
		retry.CheckRetry = checkRetry
	}
	return policy{retry: retry, deadLetter: deadLetter, recorded: &dispatchSets{}}, nil
}

// rabbitCheckRetry is the RabbitmqSource's rule, not Knative's: it retries
// 404, 413, 425, 429, 502, 503 and 504 and transport errors, never 500
// (eventing-rabbitmq, pkg/utils/retry.go, "SelectiveRetry").
func rabbitCheckRetry(_ context.Context, resp *http.Response, err error) (bool, error) {
	if resp == nil || err != nil {
		return true, nil
	}
	switch resp.StatusCode {
	case 404, 413, 425, 429, 502, 503, 504:
		return true, nil
	}
	return false, nil
}

// outcome is how a delivery ended.
type outcome int

const (
	delivered    outcome = iota // a 2xx
	deadLettered                // refused or retries spent, then taken by the dead-letter sink
	failed                      // refused or retries spent, and no dead-letter sink took it
)

// sender delivers CloudEvents with Knative's own dispatcher.
type sender struct {
	dispatcher *kncloudevents.Dispatcher
	dispatch   metric.Float64Histogram // kn.eventing.dispatch.duration
	log        *slog.Logger
	// duplicate makes every delivery happen twice, as an at-least-once
	// platform may: a fault to prove the consumers idempotent.
	duplicate atomic.Bool
}

func newSender(mp metric.MeterProvider, log *slog.Logger) *sender {
	// Knative's dispatcher keeps one client per destination, made from
	// http.DefaultTransport (2 idle connections per host): hundreds of
	// deliveries in flight would open and close a connection each.
	kncloudevents.ConfigureConnectionArgs(&kncloudevents.ConnectionArgs{MaxIdleConns: 2048, MaxIdleConnsPerHost: 512})
	return &sender{dispatcher: kncloudevents.NewDispatcher(eventingtls.ClientConfig{}, nil,
		// Its own HTTP-client instruments (otherwise through the global
		// provider) cost the rate more than they tell (docs/performance.md).
		kncloudevents.WithMeterProvider(noop.NewMeterProvider())), dispatch: newDispatchDuration(mp), log: log}
}

// copies is how many times each event is delivered.
func (s *sender) copies() int {
	if s.duplicate.Load() {
		return 2
	}
	return 1
}

// deliverAll delivers e as many times as there are copies (two under the
// duplicate fault) and answers the first delivery's outcome; false when the
// runtime is stopping and the delivery did not finish.
func (s *sender) deliverAll(ctx context.Context, target duckv1.Addressable, e *event.Event, p policy, reply *broker) (outcome, bool) {
	var first outcome
	for i := range s.copies() {
		o := s.deliver(ctx, target, e, p, reply)
		if ctx.Err() != nil {
			return o, false
		}
		if i == 0 {
			first = o
		}
	}
	return first, true
}

// deliver sends e to target under p and, when reply is set, appends the
// event a 2xx answer carried to that Broker's topic; what fails goes to p's
// dead-letter sink with the knativeerror* extensions.
//
// Replies are appended, not posted to the Broker's ingress: the Kafka
// broker's dispatcher produces a reply straight to the Broker's topic
// (eventing-kafka-broker, ResponseToKafkaTopicHandler); only when that
// fails does the reply go through the Dispatcher to the ingress. And the dead letter
// is a SendEvent of its own: kncloudevents.Dispatcher can send it within
// the first SendEvent (WithDeadLetterSink) but then does not tell whether
// the event was delivered or dead-lettered, which GET /status counts.
func (s *sender) deliver(ctx context.Context, target duckv1.Addressable, e *event.Event, p policy, reply *broker) outcome {
	info, err := s.dispatcher.SendEvent(ctx, *e, target, kncloudevents.WithRetryConfig(&p.retry))
	s.recordDispatch(ctx, p, e, info)
	failedAt := target.URL
	if err == nil && reply != nil {
		if answer := replyEvent(ctx, info); answer != nil {
			if reply.append(ctx, answer) != nil {
				// The topic refused it: the reply goes to the Broker's
				// ingress instead, retried under the DeliverySpec as
				// Knative's dispatcher retries a reply.
				failedAt = reply.address.URL
				info, err = s.dispatcher.SendEvent(ctx, *answer, reply.address, kncloudevents.WithRetryConfig(&p.retry))
			}
		}
	}
	if err == nil {
		return delivered
	}
	if ctx.Err() != nil {
		return failed
	}
	if info == nil {
		info = &kncloudevents.DispatchInfo{}
	}
	if p.deadLetter == nil {
		s.log.Warn("delivery failed", "id", e.ID(), "type", e.Type(), "target", failedAt.String(), "status", info.ResponseCode, "error", err)
		return failed
	}
	if _, err := s.dispatcher.SendEvent(ctx, *e, *p.deadLetter, kncloudevents.WithRetryConfig(&p.retry),
		kncloudevents.WithTransformers(errorExtensions(failedAt, info))); err != nil {
		s.log.Error("dead-letter sink did not take the event", "id", e.ID(), "type", e.Type(), "error", err)
		return failed
	}
	return deadLettered
}

// replyEvent is the event a 2xx answer carried, nil when it carried none
// (Knative's dispatcher discards a body that is not an event).
func replyEvent(ctx context.Context, info *kncloudevents.DispatchInfo) *event.Event {
	msg := cehttp.NewMessage(info.ResponseHeader, io.NopCloser(bytes.NewReader(info.ResponseBody)))
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return nil
	}
	e, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil
	}
	return e
}

// errorExtensions are the knativeerror* extensions of a dead letter, made
// as kncloudevents makes them for its own dead-letter sink (its
// dispatchExecutionInfoTransformers is not exported): the destination, the
// status, and the answer's body in base64, at most 1,024 characters.
func errorExtensions(dest *apis.URL, info *kncloudevents.DispatchInfo) binding.Transformers {
	data := base64.StdEncoding.EncodeToString(info.ResponseBody)
	return attributes.KnativeErrorTransformers(*dest.URL(), info.ResponseCode, data[:min(len(data), attributes.KnativeErrorDataExtensionMaxLength)])
}
