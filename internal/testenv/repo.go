package testenv

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/clima-dev/clima/internal/manifest"
)

// RepoRoot is the repository's root, whatever the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Manifests reads the repository's manifests, as clima dev does.
func Manifests(t testing.TB) *manifest.Set {
	t.Helper()
	set, err := manifest.Load(RepoRoot(t), manifest.Dirs...)
	if err != nil {
		t.Fatalf("loading the manifests: %v", err)
	}
	return set
}
