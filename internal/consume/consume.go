// Package consume is the logic of both consumer functions: it takes the
// CloudEvents a KafkaSource or RabbitmqSource delivers and stores their
// reports exactly once, answering 2xx only after the store holds them.
package consume

import (
	"context"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/coalesce"
)

// Saver stores reports, each at most once per id.
type Saver interface {
	SaveAll(ctx context.Context, reports []events.Report, storedAt time.Time) (stored int, err error)
}

// Handler stores the reports of delivered events.
type Handler struct {
	saves *coalesce.Group[events.Report]
}

// NewHandler stores into s what arrives by path ("kafka", "rabbitmq"). The
// events in flight at once are stored together, in one round trip to the
// store.
func NewHandler(s Saver, path string, timeout time.Duration) *Handler {
	m := newMetrics(path)
	save := func(ctx context.Context, reports []events.Report) error {
		start := time.Now()
		stored, err := s.SaveAll(ctx, reports, start)
		m.saved(ctx, reports, stored, start, err)
		return err
	}
	return &Handler{saves: coalesce.New(save, coalesce.Options{MaxItems: events.MaxGroupReports, MaxInFlight: 2, Timeout: timeout})}
}

// Handle accepts the raw events of the sources (dev.knative.kafka.event,
// dev.knative.rabbitmq.event) and any record that is itself a CloudEvent:
// whatever the type, the data must be one report or an array of them. Bad
// data answers 400 (dead-lettered, never retried); a store failure 503.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if !events.IsJSON(e.DataContentType()) {
		return nil, apierr.New(http.StatusUnsupportedMediaType, "data content type %q is not JSON", e.DataContentType())
	}
	reports, err := events.DecodeReports(e.Data())
	if err != nil {
		return nil, err
	}
	if err := h.saves.Do(ctx, reports); err != nil {
		return nil, apierr.Unavailable("storing reports", err)
	}
	return nil, nil
}
