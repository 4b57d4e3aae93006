package manifest_test

import (
	"path/filepath"
	"runtime"
	"testing"

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
