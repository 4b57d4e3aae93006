package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	knmetrics "knative.dev/pkg/observability/metrics"

	"github.com/clima-dev/clima/internal/telemetry"
	"github.com/clima-dev/clima/internal/testenv"
)

// TestConfigAgreesWithKnative: the environment's METRICS_PROTOCOL and
// METRICS_ENDPOINT are read as knative.dev/pkg reads config-observability's
// metrics-protocol and metrics-endpoint, and refused where Knative refuses
// them; the OTLP protocols, which Knative takes, clima refuses by name.
func TestConfigAgreesWithKnative(t *testing.T) {
	for _, c := range []struct {
		protocol, endpoint string
		clima              string // clima's error, "" for none
	}{
		{"prometheus", ":9464", ""},
		{"prometheus", "127.0.0.1:9464", ""},
		{"none", "", ""},
		{"none", ":9464", `METRICS_ENDPOINT should not be set when METRICS_PROTOCOL is "none"`},
		{"prometheus", "9464", `METRICS_ENDPOINT "9464" for prometheus should be host:port`},
		{"zipkin", "", `METRICS_PROTOCOL "zipkin": clima exports with "prometheus" or "none"`},
		{"grpc", "collector:4317", `METRICS_PROTOCOL "grpc": clima exports with "prometheus" or "none"`},
	} {
		env := testenv.Env(map[string]string{"METRICS_PROTOCOL": c.protocol, "METRICS_ENDPOINT": c.endpoint})
		cfg := telemetry.FromEnv(env)
		err := cfg.Validate()
		if (err == nil) != (c.clima == "") || (err != nil && err.Error() != c.clima) {
			t.Errorf("%s %q: %v, want %q", c.protocol, c.endpoint, err, c.clima)
		}
		kn, knErr := knmetrics.NewFromMap(map[string]string{"metrics-protocol": c.protocol, "metrics-endpoint": c.endpoint})
		switch {
		case c.protocol == "grpc":
			if knErr != nil {
				t.Errorf("Knative refuses grpc %q: %v", c.endpoint, knErr)
			}
		case c.protocol == "prometheus" && c.endpoint == "9464":
			// Knative's reading takes it; its exporter then refuses it
			// (buildPrometheus' SplitHostPort), as clima's reading does.
		case (knErr == nil) != (err == nil):
			t.Errorf("%s %q: Knative says %v, clima %v", c.protocol, c.endpoint, knErr, err)
		case knErr == nil && (kn.Protocol != cfg.Protocol || kn.Endpoint != cfg.Endpoint):
			t.Errorf("%s %q: Knative reads %+v, clima %+v", c.protocol, c.endpoint, kn, cfg)
		}
	}
	if d := telemetry.FromEnv(testenv.Env(nil)); d.Protocol != telemetry.ProtocolPrometheus || d.Endpoint != telemetry.DefaultEndpoint {
		t.Errorf("defaults %+v, want prometheus on %s", d, telemetry.DefaultEndpoint)
	}
}

// TestServesMetrics: what a process records through the global provider is
// served in Prometheus' format under Knative's naming, with the Go
// runtime's and the process's own.
func TestServesMetrics(t *testing.T) {
	tel, err := telemetry.Start(telemetry.Config{Protocol: telemetry.ProtocolPrometheus, Endpoint: "127.0.0.1:0"}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close(context.Background())
	counter, err := otel.Meter("test").Int64Counter("clima.test.things")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
	resp, err := http.Get("http://" + tel.Addr() + telemetry.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`clima_test_things_total{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version=""} 3`, "go_goroutine_count{", "go_memory_used_bytes{", "process_resident_memory_bytes ", `target_info{service_name="test"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in:\n%s", want, body)
		}
	}
}
