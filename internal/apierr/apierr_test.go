package apierr_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/apierr"
)

// Every kind of error answers its status and exact body; the mapper knows
// the domain's refusals only through their HTTPStatus method.
func TestWrite(t *testing.T) {
	_, invalid := events.DecodeSubmissions([]byte(`{"description":"x","country":"GT"}`))
	for _, c := range []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"its own status", apierr.New(http.StatusUnsupportedMediaType, "data content type %q is not JSON", "text/plain"),
			415, `{"error":"data content type \"text/plain\" is not JSON"}`},
		{"wrapped, the outer message", fmt.Errorf("publishing: %w", apierr.New(http.StatusBadRequest, "no reports")),
			400, `{"error":"publishing: no reports"}`},
		{"invalid input, with its problems", invalid,
			400, `{"error":"1 of 1 reports are invalid","problems":[{"index":0,"field":"weather","message":"is required"}],"total_problems":1}`},
		{"a dependency down", apierr.Unavailable("storing reports", errors.New("connection refused")),
			503, `{"error":"storing reports: connection refused"}`},
		{"a body over the limit", &http.MaxBytesError{Limit: 4 << 20},
			413, `{"error":"body is larger than 4194304 bytes"}`},
		{"anything else is retried", errors.New("boom"), 503, `{"error":"boom"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if got := apierr.Write(w, c.err); got != c.status || w.Code != c.status {
				t.Errorf("status %d (written %d), want %d", got, w.Code, c.status)
			}
			if got := w.Body.String(); got != c.body+"\n" {
				t.Errorf("body %s, want %s", got, c.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
