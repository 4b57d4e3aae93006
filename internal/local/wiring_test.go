package local

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/local/serving"
	"github.com/clima-dev/clima/internal/testenv"
)

// wiredServices is a runtime with the manifests' Services, each listening
// on its local endpoint and running no replica.
func wiredServices(t *testing.T) *runtime {
	t.Helper()
	r := &runtime{opts: Options{StateDir: t.TempDir()}, set: testenv.Manifests(t), log: slog.New(slog.DiscardHandler), services: map[string]*serving.Service{}}
	cfg, err := r.autoscalerConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.set.Services {
		svc, err := serving.NewService(s, serving.Config{BinDir: t.TempDir(), LogDir: t.TempDir(), Autoscaler: cfg, Log: r.log})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Stop(context.Background()) })
		r.services[s.Name] = svc
	}
	return r
}

// TestResolve: a destination is a Service's local endpoint (its URI's path
// kept), or its URI as it is; a kind other than a Knative Service, a
// Service that does not exist and an empty destination are errors.
func TestResolve(t *testing.T) {
	r := wiredServices(t)
	ref := func(kind, name string) *duckv1.Destination {
		return &duckv1.Destination{Ref: &duckv1.KReference{Kind: kind, Name: name, APIVersion: "serving.knative.dev/v1"}}
	}
	withPath := ref("Service", "ingest")
	withPath.URI = &apis.URL{Path: "/input"}
	uri, _ := apis.ParseURL("http://elsewhere.test/x")
	for _, tc := range []struct {
		name string
		dest *duckv1.Destination
		want string // the address, or the error's text
	}{
		{"a Service", ref("Service", "publisher"), r.services["publisher"].URL()},
		{"a Service and a path", withPath, r.services["ingest"].URL() + "/input"},
		{"a URI", &duckv1.Destination{URI: uri}, "http://elsewhere.test/x"},
		{"another kind", ref("Broker", "default"), "destination Broker default: only Knative Services are supported locally"},
		{"a missing Service", ref("Service", "nobody"), "destination Service nobody does not exist"},
		{"nothing", &duckv1.Destination{}, "destination has neither ref nor uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.resolve(tc.dest)
			text := ""
			if err != nil {
				text = err.Error()
			} else {
				text = got.URL.String()
			}
			if text != tc.want {
				t.Fatalf("resolves to %q, want %q", text, tc.want)
			}
		})
	}
}

// TestAutoscalerConfig: clima dev's -scale-to-zero-after is Knative's
// scale-to-zero grace period, and -autoscaler settings override the rest.
func TestAutoscalerConfig(t *testing.T) {
	r := &runtime{opts: Options{Idle: 7 * time.Second, Autoscaler: map[string]string{"stable-window": "6s"}}}
	cfg, err := r.autoscalerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScaleToZeroGracePeriod != 7*time.Second || cfg.StableWindow != 6*time.Second {
		t.Fatalf("grace period %s, stable window %s; want 7s and 6s", cfg.ScaleToZeroGracePeriod, cfg.StableWindow)
	}
	r.opts.Autoscaler = map[string]string{"stable-window": "soon"}
	if _, err := r.autoscalerConfig(); err == nil {
		t.Fatal("an invalid stable window was taken")
	}
}
