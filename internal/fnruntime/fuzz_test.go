package fnruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/clima-dev/clima/events"
)

// FuzzCloudEvents feeds the CloudEvents adapter any request: headers of
// binary or structured mode and any body. It must answer every refusal
// with a 4xx JSON error, and a 2xx only with an empty body or a CloudEvent.
func FuzzCloudEvents(f *testing.F) {
	report := `{"description":"llueve","country":"GT","weather":"Lluvioso"}`
	f.Add("application/json", "1.0", "id-1", "/client", events.TypeReported, []byte(report))
	f.Add("application/cloudevents+json", "", "", "", "", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data":`+report+`}`))
	f.Add("text/plain", "1.0", "", "s", "t", []byte("x"))
	f.Add("application/cloudevents-batch+json", "0.3", "1", "::", "t", []byte(`[{}]`))
	f.Add("", "", "", "", "", []byte{})
	handler := CloudEvents(func(_ context.Context, e event.Event) (*event.Event, error) {
		reports, err := events.DecodeSubmissions(e.Data())
		if err != nil {
			return nil, err
		}
		if len(reports) == 1 {
			return nil, nil
		}
		return events.NewValidated(e.Source(), e.ID(), reports, fixed)
	}, slog.New(slog.DiscardHandler))

	f.Fuzz(func(t *testing.T, contentType, specversion, id, source, typ string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		for k, v := range map[string]string{"Content-Type": contentType, "Ce-Specversion": specversion, "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch status := rec.Code; {
		case status >= 500:
			t.Fatalf("answered %d: %s", status, rec.Body)
		case status >= 400:
			var refusal struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &refusal); err != nil || refusal.Error == "" {
				t.Fatalf("refusal %d is not a JSON error: %q", status, rec.Body)
			}
		case rec.Body.Len() > 0 && rec.Header().Get("Ce-Specversion") == "":
			t.Fatalf("2xx with a body that is not a CloudEvent: %q", rec.Body)
		}
	})
}

var fixed = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
