package manifest_test

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ko is run from the module proxy at a fixed version, which keeps ko's own
// dependency graph out of clima's go.mod.
const ko = "github.com/google/ko@v0.19.1"

// nonRootUser is the user of the static base image ko.yaml names
// (cgr.dev/chainguard/static), which the offline stand-in copies.
const nonRootUser = "65532:65532"

// TestKoResolve builds every function image with ko, as `ko apply -f
// knative/` does, pushing to a registry served in the test process, on an
// empty stand-in of the static base image (no registry outside this machine
// is reachable here). Every image must run as a non-root user.
func TestKoResolve(t *testing.T) {
	root := repoRoot(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")

	base, err := name.ParseReference(host + "/base/static:latest")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Config:       v1.Config{User: nonRootUser, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(base, img); err != nil {
		t.Fatalf("pushing the base image: %v", err)
	}

	cmd := exec.Command("go", "run", ko, "resolve", "--platform=linux/amd64", "-f", "knative/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"KO_DOCKER_REPO="+host+"/clima",
		"KO_DEFAULTBASEIMAGE="+base.String(),
		"KO_CONFIG_PATH=ko.yaml",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ko resolve -f knative/: %v\n%s", err, stderr.String())
	}

	images := regexp.MustCompile(`image: (\S+@sha256:[0-9a-f]{64})`).FindAllStringSubmatch(string(out), -1)
	if len(images) != 7 {
		t.Fatalf("ko resolved %d images, want 7 (one per function)\n%s", len(images), out)
	}
	if strings.Contains(string(out), "ko://") {
		t.Fatalf("a ko:// reference was left unresolved:\n%s", out)
	}
	t.Logf("%-60s %10s", "image", "compressed")
	for _, m := range images {
		ref, err := name.ParseReference(m[1])
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if user := cfg.Config.User; user == "" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root") {
			t.Errorf("%s runs as user %q, want a non-root user", ref, user)
		}
		size := compressedSize(t, img)
		if size > maxImageBytes {
			t.Errorf("%s is %.1f MB compressed, more than %.0f MB", ref, float64(size)/1e6, float64(maxImageBytes)/1e6)
		}
		t.Logf("%-60s %7.1f MB", strings.SplitN(ref.Context().RepositoryStr(), "/", 2)[1], float64(size)/1e6)
	}
}

// maxImageBytes bounds a function's image: what a node pulls on a cold
// start from zero.
const maxImageBytes = 15_000_000

// compressedSize is what a node pulls: manifest, config and compressed layers.
func compressedSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	manifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	total := int64(len(manifest) + len(config))
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}
