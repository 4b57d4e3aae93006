package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Knative's modules, whose releases clima targets (their config/ folders
// hold the release's CRDs and ConfigMaps).
const (
	ModServing    = "knative.dev/serving"
	ModEventing   = "knative.dev/eventing"
	ModNetworking = "knative.dev/networking"
	ModKnativePkg = "knative.dev/pkg"
)

// Module is a module go.mod requires: its version and where its files
// (the release's CRDs and ConfigMaps, under config/) are.
type Module struct{ Version, Dir string }

// Modules asks the go command, in the module at root ("": the current
// directory), where the required modules are.
func Modules(root string, paths ...string) (map[string]Module, error) {
	cmd := exec.Command("go", append([]string{"list", "-m", "-json"}, paths...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m %s: %w", strings.Join(paths, " "), err)
	}
	mods := map[string]Module{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct{ Path, Version, Dir string }
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if m.Dir == "" {
			return nil, fmt.Errorf("module %s@%s is not downloaded: run go mod download", m.Path, m.Version)
		}
		mods[m.Path] = Module{Version: m.Version, Dir: m.Dir}
	}
	return mods, nil
}

// ReadConfigMap reads a ConfigMap from a release file, as kubectl apply
// would create it.
func ReadConfigMap(path string) (*corev1.ConfigMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &cm, nil
}
