package manifest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/manifest/derive"
	"github.com/clima-dev/clima/internal/manifest/owner"
)

// requests is a CPU and memory request.
type requests struct{ cpu, memory resource.Quantity }

func (r *requests) add(other requests, times int64) {
	for range times {
		r.cpu.Add(other.cpu)
		r.memory.Add(other.memory)
	}
}

func (r requests) String() string {
	return fmt.Sprintf("%dm | %dMi", r.cpu.MilliValue(), r.memory.Value()>>20)
}

func podRequests(spec corev1.PodSpec) requests {
	var r requests
	for _, c := range spec.Containers {
		r.add(requests{cpu: c.Resources.Requests[corev1.ResourceCPU], memory: c.Resources.Requests[corev1.ResourceMemory]}, 1)
	}
	return r
}

func parse(cpu, memory string) requests {
	return requests{cpu: resource.MustParse(cpu), memory: resource.MustParse(memory)}
}

// platformRequests are the requests of what make cluster-deps installs
// beyond Knative Serving's and Eventing's cores (which the test reads from
// their modules): figures read by hand from each release's manifests at
// the Makefile's pins, which no module here carries (docs/deployment.md
// names the files). The test holds their sum and the docs, not them.
var platformRequests = []struct {
	name string
	requests
}{
	{"Kourier: net-kourier-controller, 3scale-kourier-gateway", parse("400m", "400Mi")},
	{"Kafka controller and kafka-webhook-eventing", parse("120m", "120Mi")},
	{"Kafka broker: kafka-broker-receiver", parse("200m", "450Mi")},
	{"Kafka broker: kafka-broker-dispatcher, one pod once a Trigger exists", parse("1", "700Mi")},
	{"KafkaSource: kafka-source-dispatcher, one pod once a KafkaSource exists", parse("1", "700Mi")},
	{"Strimzi cluster operator", parse("200m", "384Mi")},
	{"cert-manager: three Deployments, no requests", parse("0", "0")},
	{"RabbitMQ cluster operator", parse("200m", "500Mi")},
	{"RabbitMQ messaging topology operator", parse("100m", "100Mi")},
	{"RabbitmqSource: rabbitmq-controller-manager, rabbitmq-webhook", parse("120m", "120Mi")},
}

// TestClusterSize sums the CPU and memory that everything make
// cluster-deps and make deploy install requests — Knative's cores from
// their modules' config/, clima's objects from its manifests, each
// function's pod as Knative builds it (queue-proxy included) — and holds
// docs/deployment.md's table of it, row by row.
func TestClusterSize(t *testing.T) {
	root := repoRoot(t)
	set := load(t)
	var rows []string
	row := func(name string, r requests) { rows = append(rows, fmt.Sprintf("| %s | %s |", name, r)) }
	var total requests

	mods, err := manifest.Modules(root, manifest.ModServing, manifest.ModEventing)
	if err != nil {
		t.Fatal(err)
	}
	for _, core := range []struct{ name, mod string }{
		{"Knative Serving core (serving-core.yaml)", manifest.ModServing}, {"Knative Eventing core (eventing-core.yaml)", manifest.ModEventing},
	} {
		r := releaseRequests(t, filepath.Join(mods[core.mod].Dir, "config", "core", "deployments"))
		row(core.name, r)
		total.add(r, 1)
	}
	for _, p := range platformRequests {
		row(p.name, p.requests)
		total.add(p.requests, 1)
	}
	row("**the platform**", total)

	var stores requests
	for _, ss := range set.StatefulSets {
		stores.add(podRequests(ss.Spec.Template.Spec), int64(*ss.Spec.Replicas))
	}
	for _, obj := range append(append(set.RabbitClusters, set.KafkaNodePools...), set.Kafkas...) {
		stores.add(objectRequests(t, obj), 1)
	}
	stores.add(grafanaRequests(t, root), 1)
	for _, src := range set.RabbitmqSources {
		res, err := src.AdapterResources()
		if err != nil {
			t.Fatal(err)
		}
		stores.add(requests{cpu: res.Requests[corev1.ResourceCPU], memory: res.Requests[corev1.ResourceMemory]}, 1)
	}
	row("clima: Redis, Valkey, RabbitMQ, Kafka and its topic operator, Grafana, the RabbitmqSource's adapter", stores)
	total.add(stores, 1)

	serving, err := derive.NewServing(root)
	if err != nil {
		t.Fatal(err)
	}
	var functions, growth requests
	for _, svc := range set.Services {
		d, err := serving.Deployment(svc)
		if err != nil {
			t.Fatal(err)
		}
		pod := podRequests(d.Spec.Template.Spec)
		functions.add(pod, 1)
		var max int64
		if _, err := fmt.Sscan(svc.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"], &max); err != nil || max < 1 {
			t.Fatalf("Service %s: no max-scale (%v): its pods are not bounded", svc.Name, err)
		}
		growth.add(pod, max-1)
	}
	row("clima: one pod of each of the seven functions, queue-proxy included (as when deployed)", functions)
	total.add(functions, 1)
	row("**everything, one pod of each function**", total)
	row("more while the functions scale out to their max-scale", growth)

	doc, err := os.ReadFile(filepath.Join(root, "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		t.Log(r)
		if !strings.Contains(string(doc), r+"\n") {
			t.Errorf("docs/deployment.md does not hold the row %s", r)
		}
	}
}

// releaseRequests sums the requests of the Deployments and StatefulSets of
// a release folder, times their replicas (1 unless set; an HPA's minimum is 1).
func releaseRequests(t *testing.T, dir string) requests {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var r requests
	for _, f := range files {
		docs, err := owner.Documents(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docs {
			var w struct {
				Kind string
				Spec appsv1.DeploymentSpec
			}
			if err := json.Unmarshal(doc, &w); err != nil || w.Kind != "Deployment" && w.Kind != "StatefulSet" {
				continue
			}
			replicas := int64(1)
			if w.Spec.Replicas != nil {
				replicas = int64(*w.Spec.Replicas)
			}
			r.add(podRequests(w.Spec.Template.Spec), replicas)
		}
	}
	return r
}

// objectRequests are the pods' requests of an operator's object: a
// RabbitmqCluster's or KafkaNodePool's spec.resources times spec.replicas,
// a Kafka's entity operator's.
func objectRequests(t *testing.T, obj *manifest.Object) requests {
	t.Helper()
	spec, _ := json.Marshal(obj.Spec)
	var s struct {
		Replicas       *int64                      `json:"replicas"`
		Resources      corev1.ResourceRequirements `json:"resources"`
		EntityOperator struct {
			TopicOperator struct {
				Resources corev1.ResourceRequirements `json:"resources"`
			} `json:"topicOperator"`
		} `json:"entityOperator"`
	}
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatal(err)
	}
	if obj.Kind == "Kafka" { // its brokers are the KafkaNodePool's
		res := s.EntityOperator.TopicOperator.Resources.Requests
		return requests{cpu: res[corev1.ResourceCPU], memory: res[corev1.ResourceMemory]}
	}
	var r requests
	r.add(requests{cpu: s.Resources.Requests[corev1.ResourceCPU], memory: s.Resources.Requests[corev1.ResourceMemory]}, *s.Replicas)
	return r
}

func grafanaRequests(t *testing.T, root string) requests {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "grafana", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Resources corev1.ResourceRequirements }
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return requests{cpu: v.Resources.Requests[corev1.ResourceCPU], memory: v.Resources.Requests[corev1.ResourceMemory]}
}
