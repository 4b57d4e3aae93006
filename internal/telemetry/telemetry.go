// Package telemetry is how every clima process reports what it does:
// OpenTelemetry's metric API, exported by OpenTelemetry's Prometheus
// exporter with the names Knative's components give their instruments
// (dots as underscores, unit and _total suffixes), served on a port of its
// own for a Prometheus to scrape.
//
// It is configured as Knative's components are: config-observability's
// metrics-protocol and metrics-endpoint, read here from METRICS_PROTOCOL and
// METRICS_ENDPOINT (a function's settings come from its environment).
// knative.dev/pkg/observability/metrics does the same from a ConfigMap, but
// a function links no Knative package (TestFunctionsLinkNoPlatform);
// TestConfigAgreesWithKnative holds the two readings equal.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/httpserver"
)

// The protocols of config-observability's metrics-protocol that clima
// exports with; grpc and http/protobuf (OTLP) need a collector clima does
// not run, and are refused.
const (
	ProtocolPrometheus = "prometheus"
	ProtocolNone       = "none"
)

// DefaultEndpoint is where a function serves its metrics in a pod: every
// interface, on the Prometheus exporter's registered port. Knative reserves
// queue-proxy's 9090 and 9091 in the same pod.
const DefaultEndpoint = ":9464"

// MetricsPath is where the metrics are served.
const MetricsPath = "/metrics"

// Config is config-observability's metrics settings.
type Config struct {
	Protocol string // metrics-protocol
	Endpoint string // metrics-endpoint: the host:port the exporter serves
}

// FromEnv reads METRICS_PROTOCOL (default prometheus) and METRICS_ENDPOINT
// (default DefaultEndpoint when the protocol is prometheus).
func FromEnv(env *config.Env) Config {
	c := Config{Protocol: env.String("METRICS_PROTOCOL", ProtocolPrometheus)}
	def := ""
	if c.Protocol == ProtocolPrometheus {
		def = DefaultEndpoint
	}
	c.Endpoint = env.String("METRICS_ENDPOINT", def)
	return c
}

// Validate refuses what Knative's metrics.Config refuses, and the OTLP
// protocols clima does not export with.
func (c Config) Validate() error {
	switch c.Protocol {
	case ProtocolPrometheus:
		if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
			return fmt.Errorf("METRICS_ENDPOINT %q for prometheus should be host:port", c.Endpoint)
		}
	case ProtocolNone:
		if c.Endpoint != "" {
			return fmt.Errorf("METRICS_ENDPOINT should not be set when METRICS_PROTOCOL is %q", c.Protocol)
		}
	default:
		return fmt.Errorf("METRICS_PROTOCOL %q: clima exports with %q or %q", c.Protocol, ProtocolPrometheus, ProtocolNone)
	}
	return nil
}

// Telemetry is a process's MeterProvider and the server of its metrics.
type Telemetry struct {
	provider metric.MeterProvider
	sdk      *sdkmetric.MeterProvider
	server   *http.Server
	addr     string
}

// Start builds the MeterProvider cfg says, makes it the global one (so
// that otelhttp, otelgrpc and every package's otel.Meter record into it),
// records the Go runtime's and the process's metrics, and serves them.
// service names the process (service.name on target_info).
func Start(cfg Config, service string, log *slog.Logger) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Protocol == ProtocolNone {
		t := &Telemetry{provider: noop.NewMeterProvider()}
		otel.SetMeterProvider(t.provider)
		return t, nil
	}
	registry := prometheus.NewRegistry()
	// The process's resident memory, CPU and open files, which OpenTelemetry's
	// runtime instrumentation does not record.
	if err := registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, err
	}
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res))
	if err := runtime.Start(runtime.WithMeterProvider(sdk)); err != nil {
		_ = sdk.Shutdown(context.Background())
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Endpoint)
	if err != nil {
		_ = sdk.Shutdown(context.Background())
		return nil, fmt.Errorf("serving metrics on %s: %w", cfg.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	t := &Telemetry{provider: sdk, sdk: sdk, server: httpserver.New(mux), addr: lis.Addr().String()}
	otel.SetMeterProvider(sdk)
	go func() {
		if err := t.server.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving metrics", "error", err)
		}
	}()
	return t, nil
}

// MeterProvider is the process's provider (a no-op one for protocol none).
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.provider }

// Addr is where the metrics are served, "" when they are not.
func (t *Telemetry) Addr() string { return t.addr }

// Close stops serving, last of a process's shutdown: what the drain
// counted has been scraped or is lost with the process, as in a pod.
func (t *Telemetry) Close(ctx context.Context) error {
	if t.server == nil {
		return nil
	}
	return errors.Join(t.server.Shutdown(ctx), t.sdk.Shutdown(ctx))
}
