package manifest_test

import (
	"encoding/json"
	"fmt"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clima-dev/clima/internal/manifest/owner"
)

// TestEachStepWaitsForWhatItNeeds replays `make cluster-deps deploy` as
// make -n prints it: every object is applied only after a wait on what
// serves and admits it — its CRD Established, the Deployments of the
// webhooks and operators that take it Available — and a source only once
// the Kafka or RabbitMQ it reads and the Service it feeds are Ready. On a
// fresh cluster the first command that skips a wait fails ("failed calling
// webhook … no endpoints available", "no matches for kind").
func TestEachStepWaitsForWhatItNeeds(t *testing.T) {
	commands := makeCommands(t, "cluster-deps", "deploy")
	kinds := fileKinds(t)
	problems, steps := orderProblems(commands, kinds)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d commands, %d of them waits", len(commands), steps)

	t.Run("a missing wait is found", func(t *testing.T) {
		var without []string
		for _, c := range commands {
			if !strings.Contains(c, "deployment/webhook") {
				without = append(without, c)
			}
		}
		problems, _ := orderProblems(without, kinds)
		want := "kubectl patch configmap/config-network -n knative-serving --type merge -p '{\"data\":{\"ingress-class\":\"kourier.ingress.networking.knative.dev\"}}': runs before a wait for deployment knative-serving/webhook Available"
		if !slices.Contains(problems, want) {
			t.Fatalf("without the wait on Serving's webhook: problems %q, want %q", problems, want)
		}
	})
}

// Conditions a step may need, as the waits of the Makefile state them.
func crd(name string) string { return "crd/" + name + " Established" }
func available(namespace, deployment string) string {
	return "deployment " + namespace + "/" + deployment + " Available"
}
func ready(resource, namespace string) string {
	return "every " + resource + " in " + namespace + " Ready"
}
func namespaceExists(ns string) string { return "namespace " + ns }

const (
	kafkaReady         = "every kafkas.kafka.strimzi.io in kafka Ready"
	rabbitmqReady      = "every rabbitmqclusters.rabbitmq.com in clima AllReplicasReady"
	certManagerCA      = "validatingwebhookconfiguration/cert-manager-webhook {.webhooks[0].clientConfig.caBundle}"
	knativeServingHook = "deployment knative-serving/webhook Available"
	eventingHook       = "deployment knative-eventing/eventing-webhook Available"
	kafkaHook          = "deployment knative-eventing/kafka-webhook-eventing Available"
	servicesReady      = "every services.serving.knative.dev in clima Ready"
	secretsMade        = "clima's Secrets made"
	dashboardConfigMap = "ConfigMap clima/clima-dashboard applied"
)

// scriptProvides is what a script or command leaves behind for the next.
var scriptProvides = map[string]string{
	"scripts/secrets.sh":                       secretsMade,
	"kubectl create configmap clima-dashboard": dashboardConfigMap,
}

// leadingEnv is the variables a command line sets for its command.
var leadingEnv = regexp.MustCompile(`^(\w+=\S*\s+)+`)

// releaseNeeds is what each release manifest holds that another one must
// serve or admit first (read from the releases: serving-core.yaml holds the
// queue-proxy Image and a networking Certificate; the Kafka data plane's
// pods are mutated by the Kafka webhook, failurePolicy Fail; the topology
// operator's manifest holds a cert-manager Issuer and Certificate).
var releaseNeeds = map[string][]string{
	"serving-crds.yaml": nil,
	"serving-core.yaml": {crd("images.caching.internal.knative.dev"), crd("certificates.networking.internal.knative.dev")},
	// Its config-kourier is outside the selector of Serving's config webhook.
	"kourier.yaml":       nil,
	"eventing-crds.yaml": nil,
	"eventing-core.yaml": nil,
	// Its ConfigMaps are Eventing's config, in Eventing's namespace, and its
	// roles bind to Eventing's.
	"eventing-kafka-controller.yaml": {eventingHook},
	"eventing-kafka-broker.yaml":     {kafkaHook},
	"eventing-kafka-source.yaml":     {kafkaHook},
	"strimzi-cluster-operator":       {namespaceExists("kafka")},
	"cert-manager.yaml":              nil,
	"cluster-operator.yml":           nil,
	"messaging-topology-operator-with-certmanager.yaml": {
		available("cert-manager", "cert-manager-webhook"), available("cert-manager", "cert-manager-cainjector"), certManagerCA},
	// It rewrites Eventing's sinkbindings webhook configuration: Eventing first.
	"rabbitmq-source.yaml": {eventingHook},
}

// kindNeeds is what an object of clima's needs before it is applied: the
// CRD that serves its kind, the webhooks that admit it (each release's
// config/ webhook configurations), the operator that makes it, and what a
// source or a Broker connects to.
var kindNeeds = map[string][]string{
	"v1 Namespace":                        nil,
	"v1 ConfigMap":                        nil,
	"v1 Secret":                           nil,
	"v1 Service":                          nil,
	"apps/v1 StatefulSet":                 nil,
	"networking.k8s.io/v1 NetworkPolicy":  nil,
	"serving.knative.dev/v1 Service":      {crd("services.serving.knative.dev"), knativeServingHook, available("knative-serving", "controller")},
	"eventing.knative.dev/v1 Broker":      {crd("brokers.eventing.knative.dev"), eventingHook, kafkaHook, available("knative-eventing", "kafka-controller"), kafkaReady},
	"eventing.knative.dev/v1 Trigger":     {crd("triggers.eventing.knative.dev"), eventingHook},
	"kafka.strimzi.io/v1beta2 Kafka":      {crd("kafkas.kafka.strimzi.io"), available("kafka", "strimzi-cluster-operator")},
	"kafka.strimzi.io/v1beta2 KafkaTopic": {crd("kafkatopics.kafka.strimzi.io"), available("kafka", "strimzi-cluster-operator")},
	"kafka.strimzi.io/v1beta2 KafkaNodePool": {
		crd("kafkanodepools.kafka.strimzi.io"), available("kafka", "strimzi-cluster-operator")},
	"rabbitmq.com/v1beta1 RabbitmqCluster": {crd("rabbitmqclusters.rabbitmq.com"), available("rabbitmq-system", "rabbitmq-cluster-operator")},
	"sources.knative.dev/v1 KafkaSource": {crd("kafkasources.sources.knative.dev"), kafkaHook, kafkaReady,
		ready("kafkatopics.kafka.strimzi.io", "kafka"), servicesReady},
	"sources.knative.dev/v1alpha1 RabbitmqSource": {crd("rabbitmqsources.sources.knative.dev"), available("knative-sources", "rabbitmq-webhook"),
		rabbitmqReady, ready("queues.rabbitmq.com", "clima"), servicesReady},
}

// The topology operator's kinds: its webhook admits them, the cluster they
// name must exist.
func init() {
	for _, kind := range []string{"Queue", "Exchange", "Binding", "User", "Permission"} {
		kindNeeds["rabbitmq.com/v1beta1 "+kind] = []string{crd(strings.ToLower(kind) + "s.rabbitmq.com"),
			available("rabbitmq-system", "messaging-topology-operator"), rabbitmqReady}
	}
}

// scriptNeeds is what each of clima's scripts needs of the cluster.
var scriptNeeds = map[string][]string{
	"scripts/cluster-check.sh": nil,
	// It patches the data plane's ConfigMap and restarts the receiver and the dispatcher.
	"scripts/kafka-broker-limits.sh":  {available("knative-eventing", "kafka-broker-receiver")},
	"scripts/secrets.sh":              {namespaceExists("clima")},
	"scripts/network-policy-probe.sh": {"statefulset clima/redis rolled out"},
	"helm repo add":                   nil,
	"helm upgrade --install grafana":  {namespaceExists("clima")},
	// Of a Deployment its release created in the command before.
	"kubectl set resources": nil,
}

// fileKinds are the objects of each of clima's manifest files, in order,
// as "apiVersion Kind namespace/name".
func fileKinds(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string][]string{}
	for _, dir := range []string{"knative", "kafka-source", "rabbit-source"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		for _, f := range files {
			docs, err := owner.Documents(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, f)
			for _, doc := range docs {
				var head struct {
					APIVersion, Kind string
					Metadata         struct{ Namespace, Name string }
				}
				if err := json.Unmarshal(doc, &head); err != nil {
					t.Fatal(err)
				}
				out[rel] = append(out[rel], head.APIVersion+" "+head.Kind+" "+head.Metadata.Namespace+"/"+head.Metadata.Name)
			}
		}
	}
	return out
}

var (
	waitCommand = regexp.MustCompile(`^kubectl wait --for=(condition=(\S+)|jsonpath='([^']*)') --timeout=\S+ (.*)$`)
	rolloutStat = regexp.MustCompile(`^kubectl rollout status --timeout=\S+ -n (\S+) (statefulset/\S+)$`)
	fileArg     = regexp.MustCompile(`(?:^|\s)-f (\S+)`)
)

// orderProblems walks the commands, collecting what each wait establishes,
// and says where a command runs before what it needs; it also counts the
// waits.
func orderProblems(commands []string, kinds map[string][]string) (problems []string, waits int) {
	have := map[string]bool{}
	need := func(c string, conditions []string) {
		for _, cond := range conditions {
			p := fmt.Sprintf("%s: runs before a wait for %s", c, cond)
			if !have[cond] && !slices.Contains(problems, p) {
				problems = append(problems, p)
			}
		}
	}
	for _, c := range commands {
		if m := waitCommand.FindStringSubmatch(c); m != nil {
			waits++
			for _, cond := range waitConditions(m[2], m[3], strings.Fields(m[4])) {
				have[cond] = true
			}
			continue
		}
		if m := rolloutStat.FindStringSubmatch(c); m != nil {
			waits++
			have["statefulset "+m[1]+"/"+strings.TrimPrefix(m[2], "statefulset/")+" rolled out"] = true
			continue
		}
		switch {
		case strings.HasPrefix(c, "kubectl create namespace "): // … | kubectl apply -f -
			have[namespaceExists(strings.Fields(c)[3])] = true
			continue
		case strings.HasPrefix(c, "kubectl create configmap "): // … | kubectl apply -f -
			need(c, []string{namespaceExists(flagValue(c, "-n"))})
			for prefix, cond := range scriptProvides {
				if strings.HasPrefix(c, prefix) {
					have[cond] = true
				}
			}
			continue
		case strings.HasPrefix(c, "curl ") && strings.Contains(c, "strimzi-cluster-operator"): // … | kubectl apply -f -
			need(c, releaseNeeds["strimzi-cluster-operator"])
			continue
		case strings.HasPrefix(c, "kubectl patch configmap/") && strings.Contains(c, "-n knative-serving"):
			// config.webhook.serving.knative.dev validates it (failurePolicy Fail).
			need(c, []string{knativeServingHook})
			continue
		case strings.HasPrefix(c, "kubectl apply ") || strings.HasPrefix(c, "ko apply "):
			for _, f := range fileArg.FindAllStringSubmatch(c, -1) {
				need(c, applyNeeds(f[1], kinds, have))
			}
			continue
		}
		known := false
		command := leadingEnv.ReplaceAllString(c, "")
		for prefix, conditions := range scriptNeeds {
			if strings.HasPrefix(command, prefix) {
				need(c, conditions)
				known = true
			}
		}
		if cond, ok := scriptProvides[command]; ok {
			have[cond] = true
		}
		if !known {
			problems = append(problems, fmt.Sprintf("%s: the order test does not know what this needs (add it to its tables)", c))
		}
	}
	return problems, waits
}

// waitConditions are what a kubectl wait establishes once it returns.
func waitConditions(condition, jsonpath string, args []string) []string {
	namespace, all := "", false
	var targets []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-n":
			namespace, i = args[i+1], i+1
		case "--all":
			all = true
		default:
			targets = append(targets, args[i])
		}
	}
	var out []string
	for _, target := range targets {
		switch {
		case jsonpath != "":
			out = append(out, target+" "+jsonpath)
		case strings.HasPrefix(target, "crd/"):
			out = append(out, target+" "+condition)
		case strings.HasPrefix(target, "deployment/"):
			out = append(out, "deployment "+namespace+"/"+strings.TrimPrefix(target, "deployment/")+" "+condition)
		case all:
			for _, resource := range strings.Split(target, ",") {
				out = append(out, "every "+resource+" in "+namespace+" "+condition)
			}
		}
	}
	return out
}

// applyNeeds is what applying file f needs: a release's table entry, or
// what each object of one of clima's files needs (a folder: its files, in
// the order kubectl reads them). A Namespace exists for the objects after it.
func applyNeeds(f string, kinds map[string][]string, have map[string]bool) []string {
	if strings.HasPrefix(f, "https://") {
		needs, ok := releaseNeeds[pathpkg.Base(f)]
		if !ok {
			return []string{"a release the order test does not know: " + pathpkg.Base(f)}
		}
		return needs
	}
	var files []string
	for file := range kinds {
		if file == f || filepath.Dir(file) == strings.TrimSuffix(f, "/") {
			files = append(files, file)
		}
	}
	if len(files) == 0 {
		return []string{"a file with no objects: " + f}
	}
	slices.Sort(files)
	var needs []string
	for _, file := range files {
		for _, obj := range kinds[file] {
			apiVersion, rest, _ := strings.Cut(obj, " ")
			kind, nsName, _ := strings.Cut(rest, " ")
			namespace, name, _ := strings.Cut(nsName, "/")
			conditions, ok := kindNeeds[apiVersion+" "+kind]
			if !ok {
				needs = append(needs, "a kind the order test does not know: "+apiVersion+" "+kind)
			}
			needs = append(needs, conditions...)
			if namespace != "" && !have[namespaceExists(namespace)] {
				needs = append(needs, namespaceExists(namespace))
			}
			if kind == "Namespace" {
				have[namespaceExists(name)] = true
			}
		}
	}
	return needs
}

// flagValue is the value of a command's flag ("" without it).
func flagValue(command, flag string) string {
	fields := strings.Fields(command)
	if i := slices.Index(fields, flag); i >= 0 && i+1 < len(fields) {
		return fields[i+1]
	}
	return ""
}
