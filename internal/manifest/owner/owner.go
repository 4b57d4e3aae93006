// Package owner checks each deployment object with the schema or the code
// of the project that owns its kind, the way the API server and the
// operators' webhooks will: CRD schemas through k8s.io/apiextensions-apiserver
// (pruning of unknown fields, defaulting, OpenAPI validation, CEL), Knative's
// and the RabbitMQ topology operator's own validation, strict decoding into
// the owners' Go types (k8s.io/api, Strimzi's), Grafana's dashboard types.
// Nothing can be applied to a cluster here; this is what proves the
// manifests offline. docs/deployment.md lists what stays unproved.
package owner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"knative.dev/eventing/pkg/apis/feature"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/manifest"
)

// Modules whose files the checks read (CRDs, Go constants), at the
// versions go.mod requires, beside Knative's (manifest.ModServing, …).
const (
	ModClusterOperator  = "github.com/rabbitmq/cluster-operator/v2"
	ModTopologyOperator = "github.com/rabbitmq/messaging-topology-operator"
	ModStrimzi          = "github.com/scholzj/strimzi-go"
	ModGrafana          = "github.com/grafana/grafana-foundation-sdk/go"
)

// Result is the verdict on one object.
type Result struct {
	File   string
	Object string // "Kind namespace/name"
	// Check names the owner's checks that took the object.
	Check string
	Errs  []string // "field: what is wrong"
}

// Checker holds the owners' schemas.
type Checker struct {
	crds  map[string]*crdSchema
	enums map[string][]string // Strimzi's enum types → their constants
	// Features are the Eventing release's feature flags (features.yaml).
	Features feature.Flags
	Modules  map[string]manifest.Module
}

// New reads the owners' schemas from the module cache.
func New() (*Checker, error) {
	mods, err := manifest.Modules("", manifest.ModServing, manifest.ModEventing, ModClusterOperator, ModTopologyOperator, ModStrimzi, ModGrafana)
	if err != nil {
		return nil, err
	}
	topology := filepath.Join(mods[ModTopologyOperator].Dir, "config", "crd", "bases")
	crds, err := loadCRDs(
		filepath.Join(mods[manifest.ModServing].Dir, "config", "core", "300-resources", "service.yaml"),
		filepath.Join(mods[manifest.ModEventing].Dir, "config", "core", "resources", "broker.yaml"),
		filepath.Join(mods[manifest.ModEventing].Dir, "config", "core", "resources", "trigger.yaml"),
		filepath.Join(mods[ModClusterOperator].Dir, "config", "crd", "bases", "rabbitmq.com_rabbitmqclusters.yaml"),
		filepath.Join(topology, "rabbitmq.com_queues.yaml"),
		filepath.Join(topology, "rabbitmq.com_exchanges.yaml"),
		filepath.Join(topology, "rabbitmq.com_bindings.yaml"),
		filepath.Join(topology, "rabbitmq.com_users.yaml"),
		filepath.Join(topology, "rabbitmq.com_permissions.yaml"),
		filepath.Join(topology, "rabbitmq.com_policies.yaml"),
	)
	if err != nil {
		return nil, err
	}
	enums := map[string][]string{}
	for _, src := range []struct{ file, pkg string }{
		{filepath.Join(mods[ModStrimzi].Dir, "pkg", "apis", "kafka.strimzi.io", "v1beta2", "types.go"), ModStrimzi + "/pkg/apis/kafka.strimzi.io/v1beta2"},
		{filepath.Join(mods[ModGrafana].Dir, "dashboard", "types_gen.go"), ModGrafana + "/dashboard"},
		{filepath.Join(mods[ModGrafana].Dir, "common", "types_gen.go"), ModGrafana + "/common"},
		{filepath.Join(mods[ModGrafana].Dir, "stat", "types_gen.go"), ModGrafana + "/stat"},
	} {
		if err := goEnums(enums, src.file, src.pkg); err != nil {
			return nil, err
		}
	}
	features, err := manifest.ReleaseFeatures("")
	if err != nil {
		return nil, err
	}
	return &Checker{crds: crds, enums: enums, Features: features, Modules: mods}, nil
}

// CheckFile checks every object of a manifest file; rel names it in the
// results.
func (c *Checker) CheckFile(ctx context.Context, path, rel string) ([]Result, error) {
	docs, err := Documents(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	results := make([]Result, len(docs))
	for i, doc := range docs {
		results[i] = c.CheckDocument(ctx, rel, doc)
	}
	return results, nil
}

// Documents reads a manifest file as JSON documents: each YAML document,
// or the JSON file whole.
func Documents(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".json") {
		return [][]byte{data}, nil
	}
	var docs [][]byte
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		jsonDoc, err := yaml.YAMLToJSONStrict(doc) // a duplicate key is an error
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if trimmed := bytes.TrimSpace(jsonDoc); len(trimmed) == 0 || string(trimmed) == "null" {
			continue
		}
		docs = append(docs, jsonDoc)
	}
}

// CheckDocument checks one document of the file rel: the dashboard, the
// Grafana chart's values, or a Kubernetes object.
func (c *Checker) CheckDocument(ctx context.Context, rel string, doc []byte) Result {
	switch {
	case filepath.Dir(rel) == "grafana" && strings.HasSuffix(rel, ".json"):
		return c.checkDashboard(rel, doc)
	case filepath.Dir(rel) == "grafana" && filepath.Base(rel) == "values.yaml":
		return c.checkHelmValues(rel, doc)
	}
	return c.CheckObject(ctx, rel, doc)
}

// CheckObject checks one object (JSON).
func (c *Checker) CheckObject(ctx context.Context, file string, doc []byte) Result {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name, Namespace string
		} `json:"metadata"`
	}
	r := Result{File: file}
	if err := json.Unmarshal(doc, &head); err != nil {
		r.Errs = []string{err.Error()}
		return r
	}
	r.Object = head.Kind + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
	kind, ok := kinds[head.APIVersion+" "+head.Kind]
	if !ok {
		r.Check = "none"
		r.Errs = []string{fmt.Sprintf("no owner's check is named for %s %s: add one to internal/manifest/owner", head.APIVersion, head.Kind)}
		return r
	}
	r.Check = kind.name
	errs := metadata(doc, kind.namespaced, kind.nameRule)
	errs = append(errs, kind.check(ctx, c, head.APIVersion+" "+head.Kind, doc)...)
	for _, e := range errs {
		r.Errs = append(r.Errs, e.Error())
	}
	return r
}

// metadata decodes metadata strictly into ObjectMeta and validates it as
// the API server does for every object (apimachinery's ValidateObjectMeta).
func metadata(doc []byte, namespaced bool, nameRule apimachineryvalidation.ValidateNameFunc) field.ErrorList {
	if nameRule == nil {
		nameRule = apimachineryvalidation.NameIsDNSSubdomain
	}
	var obj struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	_ = json.Unmarshal(doc, &obj)
	var meta metav1.ObjectMeta
	errs := strictInto(obj.Metadata, &meta, field.NewPath("metadata"))
	return append(errs, apimachineryvalidation.ValidateObjectMeta(&meta, namespaced, nameRule, field.NewPath("metadata"))...)
}

// strictInto decodes as the API server does with strict field validation:
// case-sensitive, unknown and duplicate fields refused.
func strictInto(data []byte, v any, path *field.Path) field.ErrorList {
	if len(data) == 0 {
		return nil
	}
	strict, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		return field.ErrorList{problem(path, err.Error())}
	}
	var errs field.ErrorList
	for _, e := range strict {
		errs = append(errs, problem(path, e.Error()))
	}
	return errs
}

// problem is an error at path (the object when nil) whose value is not
// worth repeating.
func problem(path *field.Path, detail string) *field.Error {
	f := "object"
	if path != nil {
		f = path.String()
	}
	return &field.Error{Type: field.ErrorTypeInvalid, Field: f, BadValue: field.OmitValueType{}, Detail: detail}
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
