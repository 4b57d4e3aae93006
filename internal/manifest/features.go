package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"sigs.k8s.io/yaml"
)

// EventingModule is the Knative Eventing module whose release clima targets.
const EventingModule = "knative.dev/eventing"

// releaseFeatures caches ReleaseFeatures: the file does not change.
var releaseFeatures = sync.OnceValues(readReleaseFeatures)

// ReleaseFeatures are the feature flags of the Eventing release in go.mod
// (its config/core/configmaps/features.yaml, the ConfigMap a cluster starts
// with): what the manifests are validated with and what clima dev honours.
func ReleaseFeatures() (feature.Flags, error) { return releaseFeatures() }

func readReleaseFeatures() (feature.Flags, error) {
	out, err := exec.Command("go", "list", "-m", "-json", EventingModule).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m %s: %w", EventingModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("module %s is not downloaded: run go mod download", EventingModule)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "config", "core", "configmaps", "features.yaml"))
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("features.yaml: %w", err)
	}
	return feature.NewFlagsConfigFromConfigMap(&cm)
}
