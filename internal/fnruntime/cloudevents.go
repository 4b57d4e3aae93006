package fnruntime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/gorilla/mux"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
)

// EventHandler handles one CloudEvent. A nil event with a nil error answers
// 200 with an empty body; an event is the reply, sent back in binary mode. An
// error is answered by apierr: 4xx for the sender's fault, 503 otherwise.
type EventHandler func(ctx context.Context, e event.Event) (*event.Event, error)

// EventFunction is an HTTP function that takes CloudEvents at POST /,
// bodies up to events.MaxBodyBytes.
func EventFunction(handle EventHandler, log *slog.Logger) *Function {
	return EventFunctionLimit(handle, events.MaxBodyBytes, log)
}

// EventFunctionLimit is EventFunction with another body limit.
func EventFunctionLimit(handle EventHandler, maxBody int64, log *slog.Logger) *Function {
	return &Function{Routes: func(r *mux.Router) {
		r.Handle("/", cloudEvents(handle, maxBody, log)).Methods(http.MethodPost)
	}}
}

// CloudEvents adapts an EventHandler to HTTP with the CloudEvents SDK's
// binding (binary and structured mode). It reads the request itself rather
// than through cehttp.NewHTTPReceiveHandler, which answers errors as plain
// text: every refusal here is a JSON body, and a 2xx body is empty or a
// CloudEvent, never anything else (Knative's dispatcher would drop it).
func CloudEvents(handle EventHandler, log *slog.Logger) http.Handler {
	return cloudEvents(handle, events.MaxBodyBytes, log)
}

func cloudEvents(handle EventHandler, maxBody int64, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		e, err := readEvent(r)
		var reply *event.Event
		if err == nil {
			reply, err = handle(r.Context(), *e)
		}
		status := http.StatusOK
		switch {
		case err != nil:
			status = apierr.Write(w, err)
		case reply != nil:
			if werr := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), http.StatusOK, w); werr != nil {
				log.Warn("writing reply", "error", werr)
			}
		default:
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(status)
		}
		logEvent(log, e, status, err, time.Since(start))
	})
}

func readEvent(r *http.Request) (*event.Event, error) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	e, err := binding.ToEvent(r.Context(), msg)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, err
	case errors.Is(err, binding.ErrUnknownEncoding):
		return nil, apierr.New(http.StatusUnsupportedMediaType,
			"not a CloudEvent: send binary mode (ce-* headers) or structured mode (Content-Type application/cloudevents+json)")
	case err != nil:
		return nil, apierr.New(http.StatusBadRequest, "invalid CloudEvent: %v", err)
	}
	if err := e.Validate(); err != nil {
		return nil, apierr.New(http.StatusBadRequest, "invalid CloudEvent: %v", err)
	}
	return e, nil
}

func logEvent(log *slog.Logger, e *event.Event, status int, err error, took time.Duration) {
	attrs := []any{"status", status, "took", took}
	if e != nil {
		attrs = append(attrs, "id", e.ID(), "type", e.Type(), "source", e.Source())
	}
	switch {
	case err == nil:
		// Debug: a line per event would cost each function a write per
		// event, as much as the event's own work.
		log.Debug("event handled", attrs...)
	case status < 500:
		log.Info("event refused", append(attrs, "error", err)...)
	default:
		log.Warn("event failed", append(attrs, "error", err)...)
	}
}
