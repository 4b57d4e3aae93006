package manifest

import (
	"path/filepath"

	"knative.dev/eventing/pkg/apis/feature"
)

// EventingModule is the Knative Eventing module whose release clima targets.
const EventingModule = "knative.dev/eventing"

// ReleaseFeatures are the feature flags of the Eventing release in the
// go.mod of the module at root ("": the current directory): its
// config/core/configmaps/features.yaml, the ConfigMap a cluster starts
// with. The manifests are validated with them and clima dev honours them.
func ReleaseFeatures(root string) (feature.Flags, error) {
	mods, err := Modules(root, EventingModule)
	if err != nil {
		return nil, err
	}
	cm, err := ReadConfigMap(filepath.Join(mods[EventingModule].Dir, "config", "core", "configmaps", "features.yaml"))
	if err != nil {
		return nil, err
	}
	return feature.NewFlagsConfigFromConfigMap(cm)
}
