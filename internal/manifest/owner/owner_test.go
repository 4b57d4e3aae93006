package owner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/manifest/owner"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// manifestFiles are every file the deployment applies or provisions.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	var patterns []string
	for _, dir := range []string{"knative", "kafka-source", "rabbit-source", "grafana"} {
		for _, ext := range []string{"yaml", "yml", "json"} { // what kubectl apply -f reads
			patterns = append(patterns, dir+"/*."+ext)
		}
	}
	for _, pattern := range patterns {
		m, err := filepath.Glob(filepath.Join(repoRoot(t), pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(repoRoot(t), f)
			files = append(files, rel)
		}
	}
	return files
}

func checker(t *testing.T) *owner.Checker {
	t.Helper()
	c, err := owner.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryObjectByItsOwner: every object of the manifests passes its
// owner's check with no error and no warning; the log lists which check
// took each object.
func TestEveryObjectByItsOwner(t *testing.T) {
	c := checker(t)
	objects := 0
	for _, rel := range manifestFiles(t) {
		results, err := c.CheckFile(context.Background(), filepath.Join(repoRoot(t), rel), rel)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			objects++
			t.Logf("%-32s %-45s %s", r.File, r.Object, r.Check)
			for _, e := range r.Errs {
				t.Errorf("%s: %s: %s", r.File, r.Object, e)
			}
		}
	}
	if objects < 25 {
		t.Errorf("checked %d objects, want every object of the manifests", objects)
	}
}

// mutation changes one document of a file.
type mutation struct {
	kind  string // misspelt, enum, required
	path  []string
	field string // the field the refusal must name
	// exists says the field is in the manifest (else the mutation adds its
	// parents, empty, so that it is missing).
	exists bool
}

// handPicked are the enum and required fields of kinds whose owner checks
// in code (Knative's Validate, the sources' webhooks' rules, the constants
// of k8s.io/api and strimzi-go, Grafana's types) rather than in a CRD
// schema; field is the path the refusal must name.
var handPicked = map[string][]mutation{
	"Service serving.knative.dev/v1": {
		{kind: "enum", path: []string{"spec", "template", "metadata", "annotations", "autoscaling.knative.dev/metric"}, field: "spec.template.metadata.annotations.autoscaling.knative.dev/metric"},
		{kind: "required", exists: true, path: []string{"spec", "template", "spec", "containers", "0", "image"}, field: "spec.template.spec.containers[0].image"},
	},
	"Broker eventing.knative.dev/v1": {
		{kind: "enum", path: []string{"spec", "delivery", "backoffPolicy"}, field: "spec.delivery.backoffPolicy"},
		{kind: "required", exists: true, path: []string{"spec", "config", "name"}, field: "spec.config.name"},
	},
	"Trigger eventing.knative.dev/v1": {
		{kind: "enum", path: []string{"spec", "delivery", "backoffPolicy"}, field: "spec.delivery.backoffPolicy"},
		{kind: "required", exists: true, path: []string{"spec", "broker"}, field: "spec.broker"},
	},
	"Service v1": {
		{kind: "enum", path: []string{"spec", "type"}, field: "spec.type"},
		{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"},
	},
	"StatefulSet apps/v1": {
		{kind: "enum", path: []string{"spec", "podManagementPolicy"}, field: "spec.podManagementPolicy"},
		{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"},
	},
	"NetworkPolicy networking.k8s.io/v1": {
		{kind: "enum", path: []string{"spec", "policyTypes", "0"}, field: "spec.policyTypes[0]"},
		{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"},
	},
	"Namespace v1": {{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"}},
	"ConfigMap v1": {{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"}},
	"KafkaNodePool kafka.strimzi.io/v1beta2": {
		{kind: "enum", path: []string{"spec", "storage", "type"}, field: "spec.storage.type"},
		{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"},
	},
	"Kafka kafka.strimzi.io/v1beta2": {
		{kind: "enum", path: []string{"spec", "kafka", "listeners", "0", "type"}, field: "spec.kafka.listeners[0].type"},
		{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"},
	},
	"KafkaTopic kafka.strimzi.io/v1beta2": {{kind: "required", exists: true, path: []string{"metadata", "name"}, field: "metadata.name"}},
	"KafkaSource sources.knative.dev/v1": {
		{kind: "enum", path: []string{"spec", "initialOffset"}, field: "spec.initialOffset"},
		{kind: "required", exists: true, path: []string{"spec", "topics"}, field: "spec.topics"},
	},
	// eventing-rabbitmq's webhook defines no enum.
	"RabbitmqSource sources.knative.dev/v1alpha1": {
		{kind: "required", exists: true, path: []string{"spec", "rabbitmqClusterReference", "name"}, field: "spec.rabbitmqClusterReference.name"},
	},
	"Dashboard": {
		{kind: "enum", path: []string{"panels", "0", "fieldConfig", "defaults", "thresholds", "mode"}, field: "fieldConfig.defaults.thresholds.mode"},
		{kind: "required", exists: true, path: []string{"templating"}, field: "templating"},
	},
}

// dotted writes a path as field errors do: a.b[0].c.
func dotted(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// misspell renames the first field of spec (or data, or a panel's gridPos,
// or a datasource's url) by adding "Typo".
func misspell(doc map[string]any) mutation {
	switch {
	case doc["panels"] != nil:
		return mutation{kind: "misspelt", path: []string{"panels", "0", "gridPos"}, field: "gridPosTypo"}
	case doc["datasources"] != nil:
		return mutation{kind: "misspelt", path: []string{"datasources", "datasources.yaml", "datasources", "0", "url"}, field: "urlTypo"}
	case doc["spec"] != nil:
		first := slices.Sorted(maps.Keys(doc["spec"].(map[string]any)))[0]
		return mutation{kind: "misspelt", path: []string{"spec", first}, field: "spec." + first + "Typo"}
	case doc["data"] != nil:
		return mutation{kind: "misspelt", path: []string{"data"}, field: "dataTypo"}
	}
	return mutation{kind: "misspelt", path: []string{"metadata", "labels"}, field: "labelsTypo"}
}

// apply changes the field at path of doc: renames it, sets a value no enum
// has, or removes it.
func apply(t *testing.T, doc any, m mutation) {
	t.Helper()
	for i, key := range m.path {
		last := i == len(m.path)-1
		switch node := doc.(type) {
		case map[string]any:
			if _, ok := node[key]; !ok {
				if m.kind == "misspelt" || m.kind == "required" && m.exists {
					t.Fatalf("no field %s in the document", strings.Join(m.path[:i+1], "."))
				}
				if !last {
					// The schema's field is not in the object: its parents
					// are made, empty.
					node[key] = map[string]any{}
				}
			}
			if last {
				switch m.kind {
				case "misspelt":
					node[key+"Typo"] = node[key]
					delete(node, key)
				case "enum":
					node[key] = "notAValidValue"
				case "required":
					delete(node, key)
				}
				return
			}
			doc = node[key]
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n >= len(node) || last && m.kind != "enum" {
				t.Fatalf("cannot follow %s", strings.Join(m.path[:i+1], "."))
			}
			if last {
				node[n] = "notAValidValue"
				return
			}
			doc = node[n]
		default:
			t.Fatalf("cannot follow %s", strings.Join(m.path[:i+1], "."))
		}
	}
}

// TestMutationsAreRefused: in every manifest file, a misspelt field is
// refused; for each kind whose owner defines them, a value outside an enum
// and a missing required field too — each refusal naming the file, the
// object and the field, and coming from the owner's schema or code.
func TestMutationsAreRefused(t *testing.T) {
	c := checker(t)
	ctx := context.Background()
	kindsSeen := map[string]bool{}
	for _, rel := range manifestFiles(t) {
		docs, err := owner.Documents(filepath.Join(repoRoot(t), rel))
		if err != nil {
			t.Fatal(err)
		}
		for i, raw := range docs {
			var head map[string]any
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			kind := fmt.Sprint(head["kind"], " ", head["apiVersion"])
			if head["panels"] != nil {
				kind = "Dashboard"
			}
			mutations := []mutation{}
			if i == 0 || !kindsSeen[kind] {
				mutations = append(mutations, misspell(head)) // in every file and of every kind
			}
			if !kindsSeen[kind] {
				kindsSeen[kind] = true
				mutations = append(mutations, handPicked[kind]...)
				if enum, required, present := c.SchemaFields(fmt.Sprint(head["apiVersion"])+" "+fmt.Sprint(head["kind"]), head); enum != nil || required != nil {
					if handPicked[kind] == nil {
						// A schema without an enum (Exchange, Binding, …) has no
						// value outside one to try.
						if enum != nil {
							mutations = append(mutations, mutation{kind: "enum", path: enum, field: dotted(enum)})
						} else {
							t.Logf("%s: the CRD of %s has no enum", rel, kind)
						}
						if required != nil {
							mutations = append(mutations, mutation{kind: "required", exists: present, path: required, field: dotted(required)})
						} else {
							t.Logf("%s: the CRD of %s requires no field", rel, kind)
						}
					}
				}
			}
			for _, m := range mutations {
				name := fmt.Sprintf("%s/%d/%s %s", rel, i, m.kind, strings.Join(m.path, "."))
				t.Run(name, func(t *testing.T) {
					var doc map[string]any
					_ = json.Unmarshal(raw, &doc)
					apply(t, doc, m)
					changed, _ := json.Marshal(doc)
					r := c.CheckDocument(ctx, rel, changed)
					all := strings.Join(r.Errs, "\n")
					if len(r.Errs) == 0 || !strings.Contains(all, m.field) {
						t.Fatalf("%s %s with %s %s: refused %v, want an error naming %q", r.File, r.Object, m.kind, strings.Join(m.path, "."), r.Errs, m.field)
					}
					t.Logf("%s: %s: %s (%s)", r.File, r.Object, firstLine(all), r.Check)
				})
			}
		}
	}
	for kind := range handPicked {
		if !kindsSeen[kind] {
			t.Errorf("handPicked names %s, which no manifest has", kind)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestVersionsMatchTheCluster ties the owners' code checked against to what
// `make cluster-deps` installs: neither moves without the other.
func TestVersionsMatchTheCluster(t *testing.T) {
	c := checker(t)
	pin := makefilePins(t)
	// Knative 1.N's Go modules are v0.(N+27): 1.20 is v0.47.
	knative := strings.Split(pin("KNATIVE_VERSION"), ".")
	minor, _ := strconv.Atoi(knative[1])
	for _, mod := range []string{manifest.ModServing, manifest.ModEventing} {
		if want := fmt.Sprintf("v0.%d.", minor+27); !strings.HasPrefix(c.Modules[mod].Version, want) {
			t.Errorf("KNATIVE_VERSION %s installs Knative 1.%d, whose %s is %sx; go.mod has %s", pin("KNATIVE_VERSION"), minor, mod, want, c.Modules[mod].Version)
		}
	}
	for name, mod := range map[string]string{"RABBITMQ_OPERATOR_VERSION": owner.ModClusterOperator, "TOPOLOGY_OPERATOR_VERSION": owner.ModTopologyOperator} {
		if pin(name) != c.Modules[mod].Version {
			t.Errorf("%s %s, but the CRDs and webhooks checked are %s %s", name, pin(name), mod, c.Modules[mod].Version)
		}
	}
	if want := "grafana/grafana " + pin("GRAFANA_CHART_VERSION"); owner.GrafanaChart != want {
		t.Errorf("the Makefile installs the chart %s, but grafana/values.yaml is checked against the keys of %s", want, owner.GrafanaChart)
	}
	// strimzi-go's README: 0.4.x is Strimzi 0.47.x. Strimzi is pinned at
	// 0.48.0 (Kafka 4.1.0 needs it): the gap is stated in
	// docs/deployment.md, and this holds both ends of it.
	if got := c.Modules[owner.ModStrimzi].Version; got != "v0.4.0" || pin("STRIMZI_VERSION") != "0.48.0" {
		t.Errorf("strimzi-go %s and STRIMZI_VERSION %s: re-check the gap in docs/deployment.md (strimzi-go v0.4.0 = Strimzi 0.47, pinned 0.48.0)", got, pin("STRIMZI_VERSION"))
	}
}

// TestGrafanaValuesAreTheChartsKeys: a key the grafana chart's templates do
// not read is dropped by Helm without a word; the check refuses it, and a
// read-only root without a writable /tmp, naming the key.
func TestGrafanaValuesAreTheChartsKeys(t *testing.T) {
	c := checker(t)
	docs, err := owner.Documents(filepath.Join(repoRoot(t), "grafana", "values.yaml"))
	if err != nil || len(docs) != 1 {
		t.Fatalf("grafana/values.yaml: %d documents, %v", len(docs), err)
	}
	for _, tc := range []struct {
		name   string
		change func(values map[string]any)
		want   string
	}{
		{"the pod's securityContext under the name the chart does not read", func(v map[string]any) {
			v["podSecurityContext"] = v["securityContext"]
			delete(v, "securityContext")
		}, `unknown field "podSecurityContext"`},
		{"a misspelt key inside a Kubernetes block", func(v map[string]any) {
			v["containerSecurityContext"].(map[string]any)["readOnlyRootFileSystem"] = true
		}, `unknown field "containerSecurityContext.readOnlyRootFileSystem"`},
		{"a read-only root without a writable /tmp", func(v map[string]any) {
			delete(v, "extraEmptyDirMounts")
		}, "extraEmptyDirMounts: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var values map[string]any
			if err := json.Unmarshal(docs[0], &values); err != nil {
				t.Fatal(err)
			}
			tc.change(values)
			changed, _ := json.Marshal(values)
			r := c.CheckDocument(context.Background(), "grafana/values.yaml", changed)
			if all := strings.Join(r.Errs, "\n"); !strings.Contains(all, tc.want) {
				t.Fatalf("refused with %q, want an error containing %q", r.Errs, tc.want)
			}
			t.Logf("refused: %s", r.Errs)
		})
	}
}

// makefilePins reads the Makefile's pins (NAME := value).
func makefilePins(t *testing.T) func(name string) string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) string {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)`).FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("the Makefile pins no %s", name)
		}
		return string(m[1])
	}
}

// TestKindClusterFitsKnative: make kind-cluster's node image is the one the
// pinned kind release ships with (its pkg/apis/config/defaults), and its
// Kubernetes is one Knative runs on (make cluster-deps checks the same
// KUBERNETES_MIN_VERSION, Knative's own: knative.dev/pkg version.go).
func TestKindClusterFitsKnative(t *testing.T) {
	root := repoRoot(t)
	pin := makefilePins(t)
	out, err := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/kind@"+pin("KIND_VERSION")).Output()
	if err != nil {
		t.Fatalf("go mod download sigs.k8s.io/kind@%s (the module proxy must answer): %v", pin("KIND_VERSION"), err)
	}
	var kind struct{ Dir string }
	if err := json.Unmarshal(out, &kind); err != nil {
		t.Fatal(err)
	}
	defaults, err := os.ReadFile(filepath.Join(kind.Dir, "pkg", "apis", "config", "defaults", "image.go"))
	if err != nil {
		t.Fatal(err)
	}
	shipped := regexp.MustCompile(`const Image = "(kindest/node:v(\d+)\.(\d+)\.\d+@sha256:[0-9a-f]+)"`).FindSubmatch(defaults)
	if shipped == nil {
		t.Fatalf("kind %s names no default node image in %s", pin("KIND_VERSION"), defaults)
	}
	config, err := os.ReadFile(filepath.Join(root, "scripts", "kind-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cluster struct {
		Kind, APIVersion string
		Nodes            []struct{ Role, Image string }
	}
	if err := yaml.UnmarshalStrict(config, &cluster); err != nil {
		t.Fatalf("scripts/kind-cluster.yaml: %v", err)
	}
	if len(cluster.Nodes) != 1 || cluster.Nodes[0].Image != string(shipped[1]) {
		t.Errorf("scripts/kind-cluster.yaml: nodes %+v, want one with kind %s's image %s", cluster.Nodes, pin("KIND_VERSION"), shipped[1])
	}

	mods, err := manifest.Modules(root, manifest.ModKnativePkg)
	if err != nil {
		t.Fatal(err)
	}
	version, err := os.ReadFile(filepath.Join(mods[manifest.ModKnativePkg].Dir, "version", "version.go"))
	if err != nil {
		t.Fatal(err)
	}
	knativeMin := regexp.MustCompile(`defaultMinimumVersion = "v((\d+)\.(\d+)\.\d+)"`).FindSubmatch(version)
	if knativeMin == nil {
		t.Fatal("knative.dev/pkg's version.go has no defaultMinimumVersion")
	}
	if pin("KUBERNETES_MIN_VERSION") != string(knativeMin[1]) {
		t.Errorf("KUBERNETES_MIN_VERSION %s, but knative.dev/pkg's version.go says %s", pin("KUBERNETES_MIN_VERSION"), knativeMin[1])
	}
	if minor, min := atoi(shipped[3]), atoi(knativeMin[3]); atoi(shipped[2]) != 1 || minor < min {
		t.Errorf("kind's node runs Kubernetes 1.%d; Knative needs 1.%d or later", minor, min)
	}
}

func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b))
	return n
}
