package manifest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestNoSecretInAnyFile scans every file of the repository, code and tests
// included, for a literal password, token or credentials in a URL. The one
// exception is RabbitMQ's built-in local user guest/guest, the default of a
// fresh local server, which never exists in a cluster deployment.
func TestNoSecretInAnyFile(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("listing the repository's files: %v", err)
	}
	files := strings.Fields(string(out))
	if len(files) < 50 {
		t.Fatalf("found only %d files to scan", len(files))
	}
	for _, file := range files {
		if strings.Contains(file, "testdata/fuzz/") || strings.HasSuffix(file, ".pb.go") || file == "go.sum" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			continue // deleted in the work tree
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.ReplaceAll(line, "guest:guest@", "")
			if looksLikeSecret(line) && !isCodeOrProse(file) || credentialsInURL.MatchString(line) {
				t.Errorf("%s:%d looks like it holds a secret: %s", file, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// isCodeOrProse tells files where "password: x" is code or text about
// passwords (a struct field, a flag's help) from configuration files, where
// it would be a value.
func isCodeOrProse(file string) bool {
	switch filepath.Ext(file) {
	case ".go", ".md", ".py", ".proto", ".lua":
		return true
	}
	return false
}

// TestPodsAreHardened checks every container clima deploys: non-root, a
// read-only root filesystem, no capabilities, no privilege escalation, the
// runtime-default seccomp profile.
func TestPodsAreHardened(t *testing.T) {
	set := load(t)
	check := func(what string, pod *corev1.PodSecurityContext, c corev1.Container) {
		t.Helper()
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", what)
			return
		}
		nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
		seccomp := sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault ||
			pod != nil && pod.SeccompProfile != nil && pod.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		switch {
		case !nonRoot:
			t.Errorf("%s may run as root", what)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s has a writable root filesystem", what)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s allows privilege escalation", what)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s does not drop every capability", what)
		case !seccomp:
			t.Errorf("%s does not use the runtime-default seccomp profile", what)
		}
	}
	for _, s := range set.Services {
		for _, c := range s.Spec.Template.Spec.Containers {
			check("Service "+s.Name, s.Spec.Template.Spec.SecurityContext, c)
		}
		_, internal := s.Labels["networking.knative.dev/visibility"]
		if internal != (s.Name != "ingest") || internal && s.Labels["networking.knative.dev/visibility"] != "cluster-local" {
			t.Errorf("Service %s: only ingest may be public, every other Service cluster-local", s.Name)
		}
	}
	for _, ss := range set.StatefulSets {
		spec := ss.Spec.Template.Spec
		for _, c := range spec.Containers {
			check("StatefulSet "+ss.Name, spec.SecurityContext, c)
			if !slices.Contains(c.Args, "--requirepass") {
				t.Errorf("StatefulSet %s: the server does not require a password", ss.Name)
			}
			fromSecret := false
			for _, e := range c.Env {
				fromSecret = fromSecret || e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && slices.Contains(c.Args, "$("+e.Name+")")
			}
			if !fromSecret {
				t.Errorf("StatefulSet %s: the password does not come from a Secret", ss.Name)
			}
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("StatefulSet %s mounts a service account token it does not need", ss.Name)
		}
	}

	var grafana struct {
		PodSecurityContext       corev1.PodSecurityContext `json:"securityContext"`
		ContainerSecurityContext corev1.SecurityContext    `json:"containerSecurityContext"`
	}
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "grafana", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &grafana); err != nil {
		t.Fatal(err)
	}
	check("Grafana", &grafana.PodSecurityContext, corev1.Container{SecurityContext: &grafana.ContainerSecurityContext})
}
