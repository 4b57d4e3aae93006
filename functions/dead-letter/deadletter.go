package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/store"
)

type deadLetters struct {
	store *store.Store
	log   *slog.Logger
	// recorded counts the dead letters recorded for the first time.
	recorded metric.Int64Counter
}

func newDeadLetters(s *store.Store, log *slog.Logger) *deadLetters {
	// The global MeterProvider, which the function runtime sets.
	recorded, _ := otel.Meter("github.com/clima-dev/clima/functions/dead-letter").Int64Counter("clima.dead_letters",
		metric.WithUnit("{event}"), metric.WithDescription("Events the platform could not deliver, recorded once each"))
	return &deadLetters{store: s, log: log, recorded: recorded}
}

// handle records any event, whatever its type or data, and answers 200 once
// it is stored; 503 when the store fails, so that the sender retries.
func (d *deadLetters) handle(ctx context.Context, e event.Event) (*event.Event, error) {
	whole, err := json.Marshal(record(e))
	if err != nil {
		return nil, apierr.New(http.StatusBadRequest, "encoding the event: %v", err)
	}
	reason := reasonOf(e)
	recorded, err := d.store.RecordDeadLetter(ctx, store.DeadLetter{ID: e.Source() + "\n" + e.ID(), Reason: reason, Event: whole})
	if err != nil {
		return nil, apierr.Unavailable("recording the dead letter", err)
	}
	if recorded {
		d.recorded.Add(ctx, 1, metric.WithAttributes(reasonAttributes(e)...))
	}
	d.log.Warn("dead letter", "id", e.ID(), "type", e.Type(), "source", e.Source(), "reason", reason, "first_time", recorded)
	return nil, nil
}

// reasonOf names why an event was dead-lettered from what Knative adds to it
// (knativeerrorcode, knativeerrordest), or its type alone.
func reasonOf(e event.Event) string {
	ext := e.Extensions()
	code, hasCode := ext["knativeerrorcode"]
	if !hasCode {
		return e.Type()
	}
	if dest, ok := ext["knativeerrordest"]; ok {
		return fmt.Sprintf("%s: %v from %v", e.Type(), code, dest)
	}
	return fmt.Sprintf("%s: %v", e.Type(), code)
}

// knownTypes are the event types a dead letter's metric names; any other
// is "other", as a label's values must be bounded and a type is the
// sender's to choose.
var knownTypes = map[string]bool{
	events.TypeReported: true, events.TypeValidated: true,
	"dev.knative.kafka.event": true, "dev.knative.rabbitmq.event": true,
}

// reasonAttributes are a dead letter's reason in bounded values: its type
// (or "other") and the status its destination answered (0 when none).
func reasonAttributes(e event.Event) []attribute.KeyValue {
	typ := e.Type()
	if !knownTypes[typ] {
		typ = "other"
	}
	code := 0
	if c, err := strconv.Atoi(fmt.Sprint(e.Extensions()["knativeerrorcode"])); err == nil && c >= 100 && c <= 599 {
		code = c
	}
	return []attribute.KeyValue{attribute.String("cloudevents.event_type", typ), semconv.HTTPResponseStatusCode(code)}
}

// deadRecord is how a dead letter is kept: its attributes, and its data as
// it came (base64), since what could not be delivered may not even be the
// JSON its content type claims.
type deadRecord struct {
	Attributes map[string]any `json:"attributes"`
	Data       []byte         `json:"data_base64,omitempty"`
}

func record(e event.Event) deadRecord {
	attrs := map[string]any{"specversion": e.SpecVersion(), "id": e.ID(), "source": e.Source(), "type": e.Type()}
	for name, value := range map[string]string{"subject": e.Subject(), "datacontenttype": e.DataContentType(), "dataschema": e.DataSchema()} {
		if value != "" {
			attrs[name] = value
		}
	}
	if !e.Time().IsZero() {
		attrs["time"] = e.Time()
	}
	for name, value := range e.Extensions() {
		attrs[name] = value
	}
	return deadRecord{Attributes: attrs, Data: e.Data()}
}
