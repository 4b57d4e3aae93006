package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"sigs.k8s.io/yaml"
)

// EventingModule is the Knative Eventing module whose release clima targets.
const EventingModule = "knative.dev/eventing"

// ReleaseFeatures are the feature flags of the Eventing release in the
// go.mod of the module at root ("": the current directory): its
// config/core/configmaps/features.yaml, the ConfigMap a cluster starts
// with. The manifests are validated with them and clima dev honours them.
func ReleaseFeatures(root string) (feature.Flags, error) {
	cmd := exec.Command("go", "list", "-m", "-json", EventingModule)
	cmd.Dir = root
	out, err := cmd.Output()
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
