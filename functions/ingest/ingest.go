package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
)

// maxIdempotencyKey bounds the Idempotency-Key header, in bytes.
const maxIdempotencyKey = 200

// sender hands an event to the sink.
type sender interface {
	Send(ctx context.Context, e event.Event) protocol.Result
}

type ingest struct {
	sink sender
	now  func() time.Time
	log  *slog.Logger
	// accepted counts the reports validated and handed on, by how they came.
	accepted metric.Int64Counter
}

// How reports came, as the accepted counter's attribute clima.ingest.via.
var (
	viaEvent = metric.WithAttributeSet(attribute.NewSet(attribute.String("clima.ingest.via", "cloudevent")))
	viaInput = metric.WithAttributeSet(attribute.NewSet(attribute.String("clima.ingest.via", "input")))
)

func newIngest(sink sender, log *slog.Logger) *ingest {
	// The global MeterProvider, which the function runtime sets.
	accepted, _ := otel.Meter("github.com/clima-dev/clima/functions/ingest").Int64Counter("clima.reports.accepted",
		metric.WithUnit("{report}"), metric.WithDescription("Reports validated and handed on to the Broker"))
	return &ingest{sink: sink, now: time.Now, log: log, accepted: accepted}
}

// accept validates what a client sent and gives the reports their ids and
// acceptance time. A redelivery of the same source and id gives the same ids.
func (in *ingest) accept(source, id, contentType string, data []byte) ([]events.Report, time.Time, error) {
	if !events.IsJSON(contentType) {
		return nil, time.Time{}, apierr.New(http.StatusUnsupportedMediaType, "content type %q is not JSON", contentType)
	}
	reports, err := events.DecodeSubmissions(data)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := in.now().UTC()
	events.Accept(reports, source, id, now)
	return reports, now, nil
}

// handleReported answers a clima.weather.reported event with its validated
// reply, or 400 naming what is wrong (the broker dead-letters it).
func (in *ingest) handleReported(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() != events.TypeReported {
		return nil, apierr.New(http.StatusBadRequest, "event type %q is not %s", e.Type(), events.TypeReported)
	}
	reports, now, err := in.accept(e.Source(), e.ID(), e.DataContentType(), e.Data())
	if err != nil {
		return nil, err
	}
	validated, err := events.NewValidated(e.Source(), e.ID(), reports, now)
	if err == nil {
		in.accepted.Add(ctx, int64(len(reports)), viaEvent)
	}
	return validated, err
}

// serveInput takes a legacy client's plain JSON, validates it, sends it to
// the sink (in events of at most events.ChunkReports reports, all at once)
// and answers 202 with the count once the sink took every one. A retry with
// the same Idempotency-Key yields the same events and report ids.
func (in *ingest) serveInput(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key, validated, count, err := in.readInput(w, r)
	if err == nil {
		err = in.send(r.Context(), validated)
	}
	if err != nil {
		status := apierr.Write(w, err)
		in.log.Info("input refused", "idempotency_key", key, "status", status, "error", err, "took", time.Since(start))
		return
	}
	in.accepted.Add(r.Context(), int64(count), viaInput)
	w.Header().Set("Idempotency-Key", key)
	apierr.WriteJSON(w, http.StatusAccepted, map[string]any{"accepted": count, "idempotency_key": key, "events": len(validated)})
	in.log.Info("input accepted", "idempotency_key", key, "reports", count, "events", len(validated), "took", time.Since(start))
}

// send hands every event to the sink at once.
func (in *ingest) send(ctx context.Context, validated []*event.Event) error {
	errs := make([]error, len(validated))
	var wg sync.WaitGroup
	for i, e := range validated {
		wg.Go(func() {
			if result := in.sink.Send(ctx, *e); !cloudevents.IsACK(result) {
				errs[i] = result
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return apierr.Unavailable("handing the reports to the broker (retry with the same Idempotency-Key)", err)
	}
	return nil
}

func (in *ingest) readInput(w http.ResponseWriter, r *http.Request) (key string, validated []*event.Event, count int, err error) {
	key = r.Header.Get("Idempotency-Key")
	if key == "" {
		key = uuid.NewString()
	} else if len(key) > maxIdempotencyKey || !printable(key) {
		return key, nil, 0, apierr.New(http.StatusBadRequest, "Idempotency-Key must be 1 to %d printable characters", maxIdempotencyKey)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxBodyBytes))
	if err != nil {
		return key, nil, 0, err
	}
	reports, now, err := in.accept(events.SourceLegacy, key, r.Header.Get("Content-Type"), body)
	if err != nil {
		return key, nil, 0, err
	}
	validated, err = events.NewValidatedChunks(events.SourceLegacy, key, reports, now)
	return key, validated, len(reports), err
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
