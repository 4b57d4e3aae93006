package manifest_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"

	"github.com/clima-dev/clima/internal/manifest"
)

// repoRoot is the module's root, whatever the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func load(t *testing.T) *manifest.Set {
	t.Helper()
	set, err := manifest.Load(repoRoot(t), manifest.Dirs...)
	if err != nil {
		t.Fatalf("loading the manifests: %v", err)
	}
	return set
}

// knativeObject is what Knative's API types implement.
type knativeObject interface {
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

// TestKnativeObjectsValidate runs Knative's own defaulting and validation on
// every Service, Broker and Trigger: no error and no warning.
func TestKnativeObjectsValidate(t *testing.T) {
	set := load(t)
	objects := map[string]knativeObject{}
	for _, s := range set.Services {
		objects["Service "+s.Name] = s
	}
	for _, b := range set.Brokers {
		objects["Broker "+b.Name] = b
	}
	for _, tr := range set.Triggers {
		objects["Trigger "+tr.Name] = tr
	}
	if len(set.Services) != 7 || len(set.Brokers) != 1 || len(set.Triggers) != 2 {
		t.Fatalf("found %d Services, %d Brokers, %d Triggers; want 7, 1, 2", len(set.Services), len(set.Brokers), len(set.Triggers))
	}
	for name, obj := range objects {
		t.Run(name, func(t *testing.T) {
			// Eventing's feature flags as a fresh installation sets them
			// (delivery-timeout is on by default).
			ctx := feature.ToContext(context.Background(), feature.FromContextOrDefaults(context.Background()))
			ctx = apis.WithinCreate(ctx)
			obj.SetDefaults(ctx)
			if err := obj.Validate(ctx); err != nil {
				errs, warnings := err.Filter(apis.ErrorLevel), err.Filter(apis.WarningLevel)
				t.Fatalf("%s does not validate cleanly:\nerrors: %v\nwarnings: %v", name, errs, warnings)
			}
		})
	}
}
