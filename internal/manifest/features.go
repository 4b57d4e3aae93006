package manifest

import (
	"path/filepath"

	"knative.dev/eventing/pkg/apis/feature"
)

// ReleaseFeatures are the feature flags of the Eventing release in the
// go.mod of the module at root ("": the current directory): its
// config/core/configmaps/features.yaml, the ConfigMap a cluster starts
// with. The manifests are validated with them and clima dev honours them.
func ReleaseFeatures(root string) (feature.Flags, error) {
	mods, err := Modules(root, ModEventing)
	if err != nil {
		return nil, err
	}
	cm, err := ReadConfigMap(filepath.Join(mods[ModEventing].Dir, "config", "core", "configmaps", "features.yaml"))
	if err != nil {
		return nil, err
	}
	return feature.NewFlagsConfigFromConfigMap(cm)
}
