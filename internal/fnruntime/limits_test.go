package fnruntime

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/clima-dev/clima/events"
)

func TestServersAreBounded(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("an HTTP server phase is unbounded: %+v", srv)
	}
	if events.MaxMessageBytes <= 0 || events.MaxMessageBytes > 64<<20 {
		t.Fatalf("gRPC message limit %d", events.MaxMessageBytes)
	}

	handled := false
	handler := CloudEvents(func(context.Context, event.Event) (*event.Event, error) { handled = true; return nil, nil }, slog.New(slog.DiscardHandler))
	body := bytes.Repeat([]byte("a"), events.MaxBodyBytes+1)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body is larger than") || handled {
		t.Fatalf("a body past the limit: %d %s (handled %v), want 413 before the handler", rec.Code, rec.Body, handled)
	}
}
