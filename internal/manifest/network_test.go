package manifest_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	strimzi "github.com/scholzj/strimzi-go/pkg/apis/kafka.strimzi.io/v1beta2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"knative.dev/serving/pkg/networking"

	"github.com/clima-dev/clima/internal/manifest"
)

// pod is a pod as NetworkPolicies see it: its namespace and labels.
type pod struct {
	name      string
	namespace string
	labels    map[string]string
}

// Ports of the pods a policy admits traffic to (their owners' constants).
const (
	queueHTTPPort    = networking.BackendHTTPPort
	queueH2CPort     = networking.BackendHTTP2Port            // the writers' gRPC
	queueMetricsPort = networking.AutoscalingQueueMetricsPort // scraped by the autoscaler
	userPort         = 8080                                   // the functions' own container port
	storePort        = 6379                                   // Redis and Valkey
	amqpPort         = 5672                                   // RabbitMQ
	rabbitAdminPort  = 15672                                  // RabbitMQ's management API
	kafkaPort        = 9092                                   // the Kafka listener "plain"
	grafanaPort      = 3000
)

// manifestPods are the pods the manifests create, labelled as their owners
// label them: Knative Serving (the template's labels and
// serving.knative.dev/service), the StatefulSets' templates, the RabbitMQ
// cluster operator (internal/metadata/label.go), eventing-rabbitmq's
// receive adapter (pkg/reconciler/source/resources), Strimzi's node pools,
// and the grafana chart installed as release "grafana" (make deploy).
func manifestPods(t *testing.T, set *manifest.Set) []pod {
	t.Helper()
	var pods []pod
	for _, svc := range set.Services {
		labels := maps.Clone(svc.Spec.Template.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels["serving.knative.dev/service"] = svc.Name
		labels["serving.knative.dev/configuration"] = svc.Name
		labels["serving.knative.dev/revision"] = svc.Name + "-00001"
		pods = append(pods, pod{svc.Name, svc.Namespace, labels})
	}
	for _, ss := range set.StatefulSets {
		pods = append(pods, pod{ss.Name, ss.Namespace, ss.Spec.Template.Labels})
	}
	for _, c := range set.RabbitClusters {
		pods = append(pods, pod{c.Metadata.Name, c.Metadata.Namespace, map[string]string{
			"app.kubernetes.io/name": c.Metadata.Name, "app.kubernetes.io/component": "rabbitmq", "app.kubernetes.io/part-of": "rabbitmq",
		}})
	}
	for _, s := range set.RabbitmqSources {
		pods = append(pods, pod{s.Metadata.Name + " adapter", s.Metadata.Namespace, map[string]string{
			"eventing.knative.dev/source": "rabbitmq-source-controller", "eventing.knative.dev/SourceName": s.Metadata.Name,
		}})
	}
	for _, pool := range set.KafkaNodePools {
		cluster := pool.Metadata.Labels["strimzi.io/cluster"]
		pods = append(pods, pod{cluster, pool.Metadata.Namespace, map[string]string{
			"strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka", "strimzi.io/name": cluster + "-kafka",
			"strimzi.io/pool-name": pool.Metadata.Name, "strimzi.io/component-type": "kafka",
		}})
	}
	pods = append(pods, pod{"grafana", "clima", map[string]string{"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"}})
	if len(pods) != len(set.Services)+len(set.StatefulSets)+len(set.RabbitClusters)+len(set.RabbitmqSources)+len(set.KafkaNodePools)+1 || len(set.Services) == 0 {
		t.Fatalf("pods of the manifests: %v", pods)
	}
	return pods
}

// platformPods are the pods of the platform that connect to clima's pods,
// with the labels their releases give them (make cluster-deps): Knative
// Serving's config/core/deployments, net-kourier's config/300-gateway.yaml,
// eventing-kafka-broker's data-plane and control-plane config, and the
// RabbitMQ operators' config/manager.
var platformPods = []pod{
	{"activator", "knative-serving", map[string]string{"app": "activator", "role": "activator"}},
	{"autoscaler", "knative-serving", map[string]string{"app": "autoscaler"}},
	{"kourier-gateway", "kourier-system", map[string]string{"app": "3scale-kourier-gateway"}},
	{"kafka-broker-receiver", "knative-eventing", map[string]string{"app": "kafka-broker-receiver"}},
	{"kafka-broker-dispatcher", "knative-eventing", map[string]string{"app": "kafka-broker-dispatcher"}},
	{"kafka-source-dispatcher", "knative-eventing", map[string]string{"app": "kafka-source-dispatcher"}},
	{"kafka-controller", "knative-eventing", map[string]string{"app": "kafka-controller"}},
	{"rabbitmq-cluster-operator", "rabbitmq-system", map[string]string{"app.kubernetes.io/name": "rabbitmq-cluster-operator", "app.kubernetes.io/component": "rabbitmq-operator"}},
	{"messaging-topology-operator", "rabbitmq-system", map[string]string{"app.kubernetes.io/name": "messaging-topology-operator", "app.kubernetes.io/component": "rabbitmq-operator"}},
	{"rabbitmq-source-controller", "knative-sources", map[string]string{"control-plane": "rabbitmq-controller-manager"}},
}

// strangers are pods that serve nothing of clima: one in another
// namespace, one started in clima's own (kubectl run), and make deploy's
// probe of enforcement with the labels kubectl run and its overrides give
// it (TestProbesOfEnforcement holds them to the script).
var strangers = []pod{
	{"stranger", "default", map[string]string{"app": "stranger"}},
	{"debug pod in clima", "clima", map[string]string{"run": "debug"}},
	{"network-policy probe", "clima", map[string]string{"run": probePod, "app.kubernetes.io/name": probePod}},
}

// probePod is the pod scripts/network-policy-probe.sh runs; its control,
// labelled as Grafana, must be admitted where the probe is refused.
const probePod = "clima-network-policy-probe"

var probeControl = pod{"network-policy probe's control", "clima", map[string]string{"run": probePod + "-control", "app.kubernetes.io/name": "grafana"}}

// TestProbesOfEnforcement: make deploy's probe runs the pods this test
// knows, against Redis: where the policies are enforced, the control's
// connection is admitted and the probe's refused, so a probe that connects
// means nothing enforces them.
func TestProbesOfEnforcement(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "network-policy-probe.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pod=" + probePod + "\n", `"labels": {"app.kubernetes.io/name": "$label"}`,
		`probe "$pod-control" grafana`, `probe "$pod" "$pod"`, fmt.Sprintf("target=${TARGET:-redis:%d}", storePort)} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/network-policy-probe.sh does not hold %q", want)
		}
	}
	allowed := policyEvaluator(t, load(t), probeControl)
	if ok, _ := allowed(path{probeControl.name, "redis", storePort}); !ok {
		t.Error("the probe's control is refused by Redis's policy: the probe would always say it cannot tell")
	}
	if ok, by := allowed(path{"network-policy probe", "redis", storePort}); ok {
		t.Errorf("the probe is admitted to Redis by %v: it would always report a cluster that does not enforce", by)
	}
}

// strimziListenerPolicies are the NetworkPolicies Strimzi makes of the
// Kafka listeners (KafkaCluster.generateNetworkPolicy, named
// <cluster>-network-policy-kafka): one ingress rule per listener port, from
// its networkPolicyPeers, or from anyone when it has none. The rules
// Strimzi adds for its own ports (replication, control plane) admit only
// Strimzi's components and are left out.
func strimziListenerPolicies(t *testing.T, set *manifest.Set) []*networkingv1.NetworkPolicy {
	t.Helper()
	var policies []*networkingv1.NetworkPolicy
	for _, k := range set.Kafkas {
		raw, _ := json.Marshal(k.Spec)
		var spec strimzi.KafkaSpec
		if err := json.Unmarshal(raw, &spec); err != nil || spec.Kafka == nil {
			t.Fatalf("Kafka %s: %v", k.Metadata.Name, err)
		}
		p := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: k.Metadata.Name + "-network-policy-kafka", Namespace: k.Metadata.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "strimzi-cluster-operator"}},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{
					"strimzi.io/cluster": k.Metadata.Name, "strimzi.io/kind": "Kafka", "strimzi.io/name": k.Metadata.Name + "-kafka",
				}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		}
		for _, l := range spec.Kafka.Listeners {
			port := networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(l.Port))}
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
				Ports: []networkingv1.NetworkPolicyPort{port},
				From:  l.NetworkPolicyPeers,
			})
		}
		policies = append(policies, p)
	}
	return policies
}

// policies are every NetworkPolicy of a deployment: the manifests' own and
// those Strimzi makes of them.
func policies(t *testing.T, set *manifest.Set) []*networkingv1.NetworkPolicy {
	t.Helper()
	if len(set.NetworkPolicies) == 0 {
		t.Fatal("the manifests hold no NetworkPolicy")
	}
	return append(slices.Clone(set.NetworkPolicies), strimziListenerPolicies(t, set)...)
}

// TestEveryPodIsIsolated: every pod the manifests create is selected by a
// NetworkPolicy for ingress, so only what a policy admits reaches it.
func TestEveryPodIsIsolated(t *testing.T) {
	set := load(t)
	all := policies(t, set)
	for _, p := range manifestPods(t, set) {
		var names []string
		for _, np := range all {
			if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && selects(t, np, p) {
				names = append(names, np.Name)
			}
		}
		if len(names) == 0 {
			t.Errorf("pod %s (%s) is selected by no NetworkPolicy for ingress: anyone in the cluster reaches it", p.name, p.namespace)
		}
	}
}

// TestPolicySelectorsMatchPods: every selector of every policy matches
// pods that exist, in the manifests or on the platform, so a misspelt
// label does not silently isolate a pod from what serves it.
func TestPolicySelectorsMatchPods(t *testing.T) {
	set := load(t)
	known := append(manifestPods(t, set), platformPods...)
	for _, np := range policies(t, set) {
		if len(matching(t, np, nil, &np.Spec.PodSelector, known)) == 0 {
			t.Errorf("NetworkPolicy %s/%s: spec.podSelector matches no pod", np.Namespace, np.Name)
		}
		for i, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s/%s: ingress[%d] admits every pod and address", np.Namespace, np.Name, i)
			}
			for j, peer := range rule.From {
				if peer.IPBlock != nil {
					t.Errorf("NetworkPolicy %s/%s: ingress[%d].from[%d] admits by address; clima admits pods", np.Namespace, np.Name, i, j)
					continue
				}
				if len(matching(t, np, peer.NamespaceSelector, peer.PodSelector, known)) == 0 {
					t.Errorf("NetworkPolicy %s/%s: ingress[%d].from[%d] matches no pod", np.Namespace, np.Name, i, j)
				}
			}
		}
	}
}

// path is a connection from one pod to a port of another.
type path struct {
	from, to string
	port     int
}

// pipelinePaths are the connections clima needs, from Knative's data path
// to the stores and the brokers.
func pipelinePaths(set *manifest.Set) []path {
	var paths []path
	for _, svc := range set.Services {
		for _, from := range []string{"kourier-gateway", "activator"} {
			paths = append(paths, path{from, svc.Name, queueHTTPPort})
		}
		paths = append(paths, path{"autoscaler", svc.Name, queueMetricsPort})
	}
	for _, writer := range []string{"kafka-writer", "rabbit-writer"} {
		paths = append(paths, path{"kourier-gateway", writer, queueH2CPort}, path{"activator", writer, queueH2CPort})
	}
	return append(paths,
		path{"kafka-consumer", "redis", storePort},
		path{"dead-letter", "redis", storePort},
		path{"grafana", "redis", storePort},
		path{"rabbit-consumer", "valkey", storePort},
		path{"grafana", "valkey", storePort},
		path{"rabbit-writer", "clima-rabbitmq", amqpPort},
		path{"clima-rabbitmq-source adapter", "clima-rabbitmq", amqpPort},
		path{"messaging-topology-operator", "clima-rabbitmq", rabbitAdminPort},
		path{"kafka-writer", "clima-kafka", kafkaPort},
		path{"kafka-broker-receiver", "clima-kafka", kafkaPort},
		path{"kafka-broker-dispatcher", "clima-kafka", kafkaPort},
		path{"kafka-source-dispatcher", "clima-kafka", kafkaPort},
		path{"kafka-controller", "clima-kafka", kafkaPort},
	)
}

// forgedPaths are connections nothing of clima makes: each would let a
// pod skip the Broker, ingest or a store's owner.
var forgedPaths = []path{
	{"stranger", "publisher", queueHTTPPort},
	{"debug pod in clima", "publisher", queueHTTPPort},
	{"kafka-writer", "publisher", queueHTTPPort},
	{"ingest", "kafka-consumer", queueHTTPPort},
	{"publisher", "kafka-writer", userPort},
	{"kourier-gateway", "publisher", userPort},
	{"stranger", "ingest", queueMetricsPort},
	{"grafana", "clima-rabbitmq", amqpPort},
	{"grafana", "clima-kafka", kafkaPort},
	{"rabbit-consumer", "redis", storePort},
	{"kafka-consumer", "valkey", storePort},
	{"dead-letter", "valkey", storePort},
	{"publisher", "redis", storePort},
	{"debug pod in clima", "redis", storePort},
	{"network-policy probe", "redis", storePort},
	{"stranger", "valkey", storePort},
	{"kafka-writer", "clima-rabbitmq", amqpPort},
	{"rabbit-writer", "clima-rabbitmq", rabbitAdminPort},
	{"rabbitmq-cluster-operator", "clima-rabbitmq", amqpPort},
	{"stranger", "clima-rabbitmq", amqpPort},
	{"rabbit-writer", "clima-kafka", kafkaPort},
	{"stranger", "clima-kafka", kafkaPort},
	{"debug pod in clima", "clima-kafka", kafkaPort},
	{"stranger", "grafana", grafanaPort},
	{"stranger", "clima-rabbitmq-source adapter", userPort},
}

// TestNetworkPolicyPaths evaluates the policies with Kubernetes'
// NetworkPolicy semantics (Cyclonus's matcher, from which SIG Network's
// policy-assistant derives) over the pods' labels: every path the pipeline
// uses is admitted, every forged one refused.
func TestNetworkPolicyPaths(t *testing.T) {
	set := load(t)
	allowed := policyEvaluator(t, set)
	pipeline := pipelinePaths(set)
	for _, p := range pipeline {
		if ok, by := allowed(p); !ok {
			t.Errorf("the pipeline's path %s → %s:%d is refused", p.from, p.to, p.port)
		} else {
			t.Logf("admitted: %s → %s:%d by %s", p.from, p.to, p.port, strings.Join(by, ", "))
		}
	}
	for _, p := range forgedPaths {
		if ok, by := allowed(p); ok {
			t.Errorf("the forged path %s → %s:%d is admitted by %s", p.from, p.to, p.port, strings.Join(by, ", "))
		}
	}
	if len(pipeline) < 30 || len(forgedPaths) < 20 {
		t.Fatalf("checked only %d pipeline and %d forged paths", len(pipeline), len(forgedPaths))
	}
}

// policyEvaluator says whether the manifests' policies admit a path between
// the pods the test knows (and extra ones), and by which rules.
func policyEvaluator(t *testing.T, set *manifest.Set, extra ...pod) func(path) (bool, []string) {
	t.Helper()
	pods := byName(t, slices.Concat(manifestPods(t, set), platformPods, strangers, extra))
	policy := matcher.BuildNetworkPolicies(false, policies(t, set))
	return func(p path) (bool, []string) {
		from, to := pods[p.from], pods[p.to]
		if from == nil || to == nil {
			t.Fatalf("path %v names a pod the test does not know", p)
		}
		result := policy.IsTrafficAllowed(&matcher.Traffic{
			Source:       peer(from),
			Destination:  peer(to),
			ResolvedPort: p.port,
			Protocol:     corev1.ProtocolTCP,
		})
		var by []string
		for _, target := range result.Ingress.AllowingTargets {
			for _, rule := range target.SourceRules {
				by = append(by, rule.Name)
			}
		}
		return result.IsAllowed(), by
	}
}

// TestPolicyTableInDocs: docs/security.md lists which policy admits whom,
// as the policies say.
func TestPolicyTableInDocs(t *testing.T) {
	set := load(t)
	table := admitsTable(t, set)
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- network-policies:begin -->\n", "<!-- network-policies:end -->"
	_, rest, ok := strings.Cut(string(doc), begin)
	documented, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("docs/security.md has no %q … %q section", begin, end)
	}
	if documented != table {
		t.Errorf("docs/security.md's table of NetworkPolicies differs from the manifests; it should read:\n%s", table)
	}
}

// admitsTable is a Markdown table: for every policy, the pods it applies
// to, and for each rule the pods it admits and on which ports.
func admitsTable(t *testing.T, set *manifest.Set) string {
	t.Helper()
	mine := manifestPods(t, set)
	known := append(slices.Clone(mine), platformPods...)
	var b strings.Builder
	b.WriteString("| policy | applies to | admits | on ports |\n| --- | --- | --- | --- |\n")
	for _, np := range policies(t, set) {
		applies := names(matching(t, np, nil, &np.Spec.PodSelector, mine))
		if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 {
			applies = "every pod in " + np.Namespace
		}
		name := np.Namespace + "/" + np.Name
		if np.Labels["app.kubernetes.io/managed-by"] == "strimzi-cluster-operator" {
			name += " (Strimzi makes it of the listener's `networkPolicyPeers`)"
		}
		first := fmt.Sprintf("| %s | %s |", name, applies)
		if len(np.Spec.Ingress) == 0 {
			b.WriteString(first + " nobody | — |\n")
		}
		for i, rule := range np.Spec.Ingress {
			var from []pod
			for _, peer := range rule.From {
				from = append(from, matching(t, np, peer.NamespaceSelector, peer.PodSelector, known)...)
			}
			var ports []string
			for _, p := range rule.Ports {
				ports = append(ports, p.Port.String())
			}
			if i > 0 {
				first = "| | |"
			}
			fmt.Fprintf(&b, "%s %s | %s |\n", first, names(from), strings.Join(ports, ", "))
		}
	}
	return b.String()
}

// matching are the pods of candidates that a peer of np selects: the
// namespaces namespaceSelector selects (np's own when nil), and in them
// the pods podSelector selects (all when nil).
func matching(t *testing.T, np *networkingv1.NetworkPolicy, namespaceSelector, podSelector *metav1.LabelSelector, candidates []pod) []pod {
	t.Helper()
	var out []pod
	for _, p := range candidates {
		inNamespace := p.namespace == np.Namespace
		if namespaceSelector != nil {
			inNamespace = selectorMatches(t, namespaceSelector, namespaceLabels(p.namespace))
		}
		if inNamespace && (podSelector == nil || selectorMatches(t, podSelector, p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

// selects tells whether np applies to p.
func selects(t *testing.T, np *networkingv1.NetworkPolicy, p pod) bool {
	return len(matching(t, np, nil, &np.Spec.PodSelector, []pod{p})) == 1
}

func selectorMatches(t *testing.T, s *metav1.LabelSelector, labels map[string]string) bool {
	t.Helper()
	selector, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatalf("label selector %v: %v", s, err)
	}
	return selector.Matches(k8slabels.Set(labels))
}

// namespaceLabels are the labels the API server gives every namespace.
func namespaceLabels(namespace string) map[string]string {
	return map[string]string{"kubernetes.io/metadata.name": namespace}
}

func peer(p *pod) *matcher.TrafficPeer {
	return &matcher.TrafficPeer{Internal: &matcher.InternalPeer{PodLabels: p.labels, Namespace: p.namespace, NamespaceLabels: namespaceLabels(p.namespace)}}
}

func byName(t *testing.T, pods []pod) map[string]*pod {
	t.Helper()
	out := map[string]*pod{}
	for i := range pods {
		if _, dup := out[pods[i].name]; dup {
			t.Fatalf("two pods are called %s", pods[i].name)
		}
		out[pods[i].name] = &pods[i]
	}
	return out
}

func names(pods []pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.name)
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}
