package eventing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/segmentio/kafka-go"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/writer"
)

// broker is a Knative Broker with the Kafka broker's semantics: an event is
// answered 202 once it is appended to the Broker's topic, and each Trigger
// is a consumer group of that topic.
type broker struct {
	namespace, name string
	address         duckv1.Addressable // its ingress
	topic           string
	writer          *kafka.Writer
	log             *slog.Logger
}

// newBrokerWriter appends to a Broker's topic; a millisecond's linger
// lets the appends of concurrent requests share a batch.
func newBrokerWriter(brokers []string, topic string) *kafka.Writer {
	return writer.NewKafkaProducer(brokers, topic, events.MaxEventBytes, time.Millisecond)
}

func (b *broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		apierr.Write(w, apierr.New(http.StatusMethodNotAllowed, "the broker ingress takes POST"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, events.MaxEventBytes)
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	e, err := binding.ToEvent(r.Context(), msg)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		apierr.Write(w, apierr.New(http.StatusBadRequest, "invalid CloudEvent: %s", err))
		return
	}
	if err := b.append(r.Context(), e); err != nil {
		apierr.Write(w, apierr.New(http.StatusServiceUnavailable, "%s", err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// append writes an event to the Broker's topic, keyed by its id, in binary
// mode (attributes in ce_ headers, the data as it came), so that any data a
// valid event carries, JSON or not, passes through untouched.
func (b *broker) append(ctx context.Context, e *event.Event) error {
	if err := b.writer.WriteMessages(ctx, eventRecord(e)); err != nil {
		return fmt.Errorf("appending to %s: %w", b.topic, err)
	}
	return nil
}

// eventRecord is a CloudEvent as a binary-mode Kafka record. Written here:
// sdk-go's Kafka bindings are for Sarama and confluent-kafka-go, not the
// kafka-go client this runtime uses.
func eventRecord(e *event.Event) kafka.Message {
	headers := []kafka.Header{
		{Key: "ce_specversion", Value: []byte(e.SpecVersion())},
		{Key: "ce_id", Value: []byte(e.ID())},
		{Key: "ce_source", Value: []byte(e.Source())},
		{Key: "ce_type", Value: []byte(e.Type())},
	}
	add := func(key, value string) {
		if value != "" {
			headers = append(headers, kafka.Header{Key: key, Value: []byte(value)})
		}
	}
	add("content-type", e.DataContentType())
	add("ce_subject", e.Subject())
	add("ce_dataschema", e.DataSchema())
	if !e.Time().IsZero() {
		add("ce_time", e.Time().UTC().Format(time.RFC3339Nano))
	}
	for name, value := range e.Extensions() {
		if text, err := types.Format(value); err == nil {
			add("ce_"+name, text)
		}
	}
	return kafka.Message{Key: []byte(e.ID()), Value: e.Data(), Headers: headers}
}
