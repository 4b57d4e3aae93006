package manifest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clima-dev/clima/internal/manifest/derive"
)

// makeCommands are the commands make would run for targets, in order, as
// make -n prints them (a command continued over lines is one), with the
// cluster tools named plainly.
func makeCommands(t *testing.T, targets ...string) []string {
	t.Helper()
	args := append([]string{"-n", "--no-print-directory", "KUBECTL=kubectl", "HELM=helm", "KO=ko",
		"KO_DOCKER_REPO=registry.example/clima"}, targets...)
	cmd := exec.Command("make", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = makeEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	joined := strings.ReplaceAll(string(out), "\\\n", " ")
	var commands []string
	for _, line := range strings.Split(joined, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			commands = append(commands, line)
		}
	}
	return commands
}

// makeEnv is the environment without what would change make's reading of
// the Makefile (flags of a make that runs the test, KO_DOCKER_REPO).
func makeEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if !slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "KO_DOCKER_REPO"}, name) {
			env = append(env, e)
		}
	}
	return env
}

// configMapPatch is a kubectl patch of a ConfigMap: a merge patch of its
// data, or a JSON patch that replaces it.
var configMapPatch = regexp.MustCompile(`^kubectl patch configmap/(\S+) -n (\S+) --type (merge|json) -p '(.*)'$`)

// clusterDepsPatches are the ConfigMap patches of make cluster-deps in a
// namespace.
func clusterDepsPatches(t *testing.T, namespace string) []derive.Patch {
	t.Helper()
	var patches []derive.Patch
	for _, c := range makeCommands(t, "cluster-deps") {
		m := configMapPatch.FindStringSubmatch(c)
		if m == nil || m[2] != namespace {
			continue
		}
		p := derive.Patch{ConfigMap: m[1]}
		var err error
		switch m[3] {
		case "merge":
			var merge struct{ Data map[string]string }
			err = json.Unmarshal([]byte(m[4]), &merge)
			p.Data = merge.Data
		case "json":
			var ops []struct {
				Op, Path string
				Value    map[string]string
			}
			err = json.Unmarshal([]byte(m[4]), &ops)
			if err == nil && (len(ops) != 1 || ops[0].Op != "replace" || ops[0].Path != "/data") {
				err = fmt.Errorf("want one replace of /data, got %+v", ops)
			}
			if err == nil {
				p.Data, p.Replace = ops[0].Value, true
			}
		}
		if err != nil {
			t.Fatalf("%s: the patch is not one the test reads: %v", c, err)
		}
		patches = append(patches, p)
	}
	return patches
}

// TestKindGetsItsNodesPlatform: ko's kind publisher can load one image per
// function and takes linux/amd64 out of an index (ko pkg/publish/kind.go),
// so make deploy to kind.local builds for the nodes' own architecture
// (an Apple-silicon node is arm64); a registry gets both platforms.
func TestKindGetsItsNodesPlatform(t *testing.T) {
	kubectl := filepath.Join(t.TempDir(), "kubectl")
	if err := os.WriteFile(kubectl, []byte("#!/bin/sh\n[ \"$1 $2\" = 'get nodes' ] && echo arm64\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]string{
		"kind.local":             "ko apply -f knative/ --platform=linux/arm64",
		"registry.example/clima": "ko apply -f knative/ --platform=linux/amd64,linux/arm64",
	} {
		cmd := exec.Command("make", "-n", "--no-print-directory", "deploy", "KUBECTL="+kubectl, "KO=ko", "HELM=helm", "KO_DOCKER_REPO="+repo)
		cmd.Dir = repoRoot(t)
		cmd.Env = makeEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n deploy: %v\n%s", err, out)
		}
		if !slices.Contains(strings.Split(string(out), "\n"), want) {
			t.Errorf("KO_DOCKER_REPO=%s: make deploy does not run %q:\n%s", repo, want, out)
		}
	}
}

// TestClusterCheckRefusesAnOldCluster: make cluster-deps stops before it
// installs anything on an API server older than Knative needs.
func TestClusterCheckRefusesAnOldCluster(t *testing.T) {
	for server, wantOK := range map[string]bool{"v1.31.9": false, "v1.32.0": true, "v1.34.1-gke.1206000": true, "v2.0.0": true, "unreachable": false} {
		kubectl := filepath.Join(t.TempDir(), "kubectl")
		// As kubectl version -o json prints it.
		version := "{\n  \"clientVersion\": {\n    \"major\": \"1\",\n    \"gitVersion\": \"v1.40.0\"\n  },\n" +
			"  \"serverVersion\": {\n    \"major\": \"1\",\n    \"gitVersion\": \"" + server + "\",\n    \"platform\": \"linux/amd64\"\n  }\n}"
		fake := "#!/bin/sh\ncat <<'EOF'\n" + version + "\nEOF\n"
		if server == "unreachable" { // kubectl prints its own version, then fails
			fake = "#!/bin/sh\necho '{\"clientVersion\": {\"gitVersion\": \"v1.40.0\"}}'\necho 'The connection to the server was refused' >&2\nexit 1\n"
		}
		if err := os.WriteFile(kubectl, []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "cluster-check.sh"), "1.32.0")
		cmd.Env = append(os.Environ(), "KUBECTL="+kubectl)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Errorf("API server %s: %v, want ok=%v\n%s", server, err, wantOK, out)
		}
		want := map[string]string{"v1.31.9": "this cluster runs Kubernetes 1.31.9; Knative 1.20 needs 1.32.0 or later",
			"unreachable": "cannot read the API server's version"}[server]
		if !strings.Contains(string(out), want) {
			t.Errorf("API server %s: says %q", server, out)
		}
	}
}
