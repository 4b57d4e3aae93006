package manifest_test

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/manifest/derive"
)

const namespace = "clima"

// debugEnv is what every function reads and no manifest sets: clima dev
// -debug sets it to profile a function.
var debugEnv = []string{"DEBUG_ADDR"}

// runtimeEnv is what the function runtime sets and no manifest does:
// LISTEN_HOST, which clima dev sets to loopback (TestServiceEnv holds it);
// in a pod it is unset, and a function listens on every interface.
var runtimeEnv = []string{"LISTEN_HOST"}

// TestReferencesResolve checks that the manifests of all four folders agree
// with each other and with the code.
func TestReferencesResolve(t *testing.T) {
	set := load(t)
	root := repoRoot(t)

	t.Run("subscribers and sinks name Services that exist", func(t *testing.T) {
		check := func(what string, d *duckv1.Destination) {
			t.Helper()
			if d == nil || d.Ref == nil {
				t.Errorf("%s: no ref", what)
				return
			}
			if d.Ref.APIVersion != "serving.knative.dev/v1" || d.Ref.Kind != "Service" || set.Service(d.Ref.Name) == nil || d.Ref.Namespace != namespace {
				t.Errorf("%s: %s %s/%s is not a Knative Service of clima", what, d.Ref.Kind, d.Ref.Namespace, d.Ref.Name)
			}
		}
		for _, b := range set.Brokers {
			check("Broker "+b.Name+" dead-letter sink", b.Spec.Delivery.DeadLetterSink)
		}
		for _, tr := range set.Triggers {
			check("Trigger "+tr.Name+" subscriber", &tr.Spec.Subscriber)
			check("Trigger "+tr.Name+" dead-letter sink", tr.Spec.Delivery.DeadLetterSink)
			if !slices.ContainsFunc(set.Brokers, func(b *eventingv1.Broker) bool { return b.Name == tr.Spec.Broker && b.Namespace == tr.Namespace }) {
				t.Errorf("Trigger %s: Broker %q does not exist", tr.Name, tr.Spec.Broker)
			}
		}
		for _, ks := range set.KafkaSources {
			check("KafkaSource sink", &ks.Spec.Sink)
			check("KafkaSource dead-letter sink", ks.Spec.Delivery.DeadLetterSink)
		}
		for _, rs := range set.RabbitmqSources {
			check("RabbitmqSource sink", &rs.Spec.Sink)
		}
		if len(set.KafkaSources) != 1 || len(set.RabbitmqSources) != 1 {
			t.Errorf("want one KafkaSource and one RabbitmqSource, found %d and %d", len(set.KafkaSources), len(set.RabbitmqSources))
		}
	})

	t.Run("every ko:// path is a main package of the module", func(t *testing.T) {
		var paths []string
		for _, s := range set.Services {
			path, ok := manifest.ImportPath(s)
			if !ok {
				t.Errorf("Service %s: image is not a ko:// reference", s.Name)
				continue
			}
			paths = append(paths, path)
		}
		cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} {{.Name}}"}, paths...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", paths, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if path, name, _ := strings.Cut(line, " "); name != "main" {
				t.Errorf("%s is package %s, not a main package", path, name)
			}
		}
	})

	t.Run("every Secret key referenced is one make secrets creates", func(t *testing.T) {
		created := secretKeys(t, root)
		for ref, where := range secretRefs(t, set, root) {
			if !created[ref] {
				t.Errorf("%s references Secret key %s, which scripts/secrets.sh does not create (it creates %v)", where, ref, sortedKeys(created))
			}
		}
	})

	t.Run("every variable a function reads is set, and none it ignores", func(t *testing.T) {
		// Set where it runs: in the Deployment Knative makes of the
		// Service, which adds PORT, K_SERVICE and the rest to its env.
		serving, err := derive.NewServing(root)
		if err != nil {
			t.Fatal(err)
		}
		bin := buildFunctions(t, root)
		for _, s := range set.Services {
			out, err := exec.Command(filepath.Join(bin, s.Name), "-list-env").Output()
			if err != nil {
				t.Errorf("%s -list-env: %v", s.Name, err)
				continue
			}
			reads := map[string]bool{}
			for _, k := range strings.Fields(string(out)) {
				if !slices.Contains(debugEnv, k) && !slices.Contains(runtimeEnv, k) {
					reads[k] = true
				}
			}
			d, err := serving.Deployment(s)
			if err != nil {
				t.Fatalf("Service %s: %v", s.Name, err)
			}
			inPod := map[string]bool{}
			for _, e := range climaContainer(t, s, d).Env {
				inPod[e.Name] = true
			}
			for k := range reads {
				if !inPod[k] {
					t.Errorf("Service %s: the function reads %s, which the Deployment Knative makes of it does not set", s.Name, k)
				}
			}
			values, secrets := manifest.Env(s)
			for k := range maps.Keys(values) {
				if !reads[k] {
					t.Errorf("Service %s: the manifest sets %s, which the function ignores", s.Name, k)
				}
			}
			for k := range maps.Keys(secrets) {
				if !reads[k] {
					t.Errorf("Service %s: the manifest sets %s, which the function ignores", s.Name, k)
				}
			}
		}
	})

	t.Run("names agree between writers, sources and brokers", func(t *testing.T) {
		checkNames(t, set)
	})

	t.Run("no password or token is written in any file", func(t *testing.T) {
		for _, file := range deploymentFiles(t, root) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(data), "\n") {
				if looksLikeSecret(line) {
					t.Errorf("%s:%d holds what looks like a literal secret: %s", file, i+1, strings.TrimSpace(line))
				}
				if credentialsInURL.MatchString(line) {
					t.Errorf("%s:%d has credentials in a URL: %s", file, i+1, strings.TrimSpace(line))
				}
			}
		}
	})
}

var (
	// literalSecret is a key that names a secret, then its value.
	literalSecret = regexp.MustCompile(`(?i)(password|passwd|secret|token|api[_-]?key)[a-z_-]*"?\s*[:=]\s*"?([^\s"{}]{4,})`)
	// secretReference is a line that names a Secret rather than holding one.
	secretReference = regexp.MustCompile(`(?i)(secretKeyRef|existingSecret|secretName|importCredentialsSecret|passwordKey|userKey)`)
	// credentialsInURL is a URL with a password, but not a shell variable's
	// ($PASS), which is where a secret goes, not one.
	credentialsInURL = regexp.MustCompile(`[a-z]+://[^/\s:@]+:[^/\s@$][^/\s@]*@`)
)

// looksLikeSecret reports whether a line writes a secret's value.
func looksLikeSecret(line string) bool {
	m := literalSecret.FindStringSubmatch(line)
	if m == nil || secretReference.MatchString(line) {
		return false
	}
	value := strings.TrimRight(m[2], ",;") // the end of a JSON or shell item, not the value
	switch {
	case value == "true" || value == "false":
		return false
	case strings.HasPrefix(value, "$"): // an environment variable, filled from a Secret
		return false
	case strings.HasPrefix(value, "clima-"): // the name of a Secret
		return false
	}
	return true
}

func TestSecretDetection(t *testing.T) {
	for line, want := range map[string]bool{
		"password: hunter22":                               true,
		`  "adminPassword": "s3cr3t-value"`:                true,
		"token=abcdef123":                                  true,
		"password: $REDIS_PASSWORD":                        false,
		"automountServiceAccountToken: false":              false,
		`{"automountServiceAccountToken": false, "x": 1}`:  false,
		"secretKeyRef: {name: clima-redis}":                false,
		"  existingSecret: clima-grafana":                  false,
		"importCredentialsSecret:":                         false,
		"secretName: clima-tls":                            false,
		"    name: clima-redis  # the secret name":         false,
		"-redis redis://reader:$REDIS_PASS@127.0.0.1:6379": false,
	} {
		if got := looksLikeSecret(line) || credentialsInURL.MatchString(line); got != want {
			t.Errorf("%q: flagged %v, want %v", line, got, want)
		}
	}
	if !credentialsInURL.MatchString((&url.URL{Scheme: "amqp", User: url.UserPassword("writer", "pw"), Host: "rabbit"}).String()) || credentialsInURL.MatchString("amqp://rabbit:5672/") {
		t.Error("credentials in URLs are not told apart")
	}
}

// deploymentFiles are every file a deployment is made of.
func deploymentFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, dir := range append(slices.Clone(manifest.Dirs), "grafana") {
		matches, err := filepath.Glob(filepath.Join(root, dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	return append(files, filepath.Join(root, "ko.yaml"), filepath.Join(root, "Makefile"), filepath.Join(root, "scripts", "secrets.sh"))
}

// secretKeys are the "secret/key" pairs scripts/secrets.sh creates.
func secretKeys(t *testing.T, root string) map[string]bool {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "scripts", "secrets.sh"), "--list").Output()
	if err != nil {
		t.Fatalf("scripts/secrets.sh --list: %v", err)
	}
	keys := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		secret, key, _ := strings.Cut(line, " ")
		keys[secret+"/"+key] = true
	}
	return keys
}

// secretRefs maps every Secret key a deployment reads ("secret/key") to
// where it is read.
func secretRefs(t *testing.T, set *manifest.Set, root string) map[string]string {
	t.Helper()
	refs := map[string]string{}
	for _, s := range set.Services {
		_, secrets := manifest.Env(s)
		for env, ref := range secrets {
			refs[ref] = "Service " + s.Name + " " + env
		}
	}
	for _, ss := range set.StatefulSets {
		for _, c := range ss.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs[e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = "StatefulSet " + ss.Name + " " + e.Name
				}
			}
		}
	}
	for _, u := range set.RabbitUsers {
		if s := u.Spec.ImportCredentialsSecret; s != nil {
			refs[s.Name+"/username"] = "RabbitMQ User " + u.Metadata.Name
			refs[s.Name+"/password"] = "RabbitMQ User " + u.Metadata.Name
		}
	}
	var values struct {
		Admin struct {
			ExistingSecret, UserKey, PasswordKey string
		} `json:"admin"`
		EnvValueFrom map[string]struct {
			SecretKeyRef struct{ Name, Key string } `json:"secretKeyRef"`
		} `json:"envValueFrom"`
	}
	data, err := os.ReadFile(filepath.Join(root, "grafana", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("grafana/values.yaml: %v", err)
	}
	refs[values.Admin.ExistingSecret+"/"+values.Admin.UserKey] = "Grafana admin user"
	refs[values.Admin.ExistingSecret+"/"+values.Admin.PasswordKey] = "Grafana admin password"
	for env, v := range values.EnvValueFrom {
		refs[v.SecretKeyRef.Name+"/"+v.SecretKeyRef.Key] = "Grafana " + env
	}
	return refs
}

// checkNames follows each name from the function that uses it to the
// object that defines it.
func checkNames(t *testing.T, set *manifest.Set) {
	t.Helper()
	env := func(service, key string) string {
		values, _ := manifest.Env(set.Service(service))
		return values[key]
	}
	equal := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}

	// Kafka: the writer's topic and brokers, the KafkaSource, the Broker's
	// config and Strimzi's objects name one cluster and one topic.
	if len(set.Kafkas) != 1 || len(set.KafkaTopics) != 1 || len(set.KafkaNodePools) == 0 {
		t.Fatalf("want one Kafka with a node pool and one KafkaTopic, found %d, %d, %d", len(set.Kafkas), len(set.KafkaNodePools), len(set.KafkaTopics))
	}
	kafka, topic, source := set.Kafkas[0], set.KafkaTopics[0], set.KafkaSources[0]
	bootstrap := fmt.Sprintf("%s-kafka-bootstrap.%s.svc:9092", kafka.Metadata.Name, kafka.Metadata.Namespace)
	equal("kafka-writer KAFKA_BROKERS", env("kafka-writer", "KAFKA_BROKERS"), bootstrap)
	equal("KafkaSource bootstrapServers", strings.Join(source.Spec.BootstrapServers, ","), bootstrap)
	equal("kafka-writer KAFKA_TOPIC", env("kafka-writer", "KAFKA_TOPIC"), topic.Name())
	equal("KafkaSource topics", strings.Join(source.Spec.Topics, ","), topic.Name())
	equal("KafkaTopic cluster label", topic.Metadata.Labels["strimzi.io/cluster"], kafka.Metadata.Name)
	equal("KafkaTopic namespace", topic.Metadata.Namespace, kafka.Metadata.Namespace)
	if topic.Spec.Partitions != 2 {
		t.Errorf("KafkaTopic partitions: %d, want 2", topic.Spec.Partitions)
	}
	if source.Spec.Consumers == nil || *source.Spec.Consumers != 2 {
		t.Errorf("KafkaSource consumers: want 2")
	}
	for _, pool := range set.KafkaNodePools {
		equal("KafkaNodePool "+pool.Metadata.Name+" cluster label", pool.Metadata.Labels["strimzi.io/cluster"], kafka.Metadata.Name)
	}
	for _, b := range set.Brokers {
		equal("Broker class", b.Annotations["eventing.knative.dev/broker.class"], "Kafka")
		var config map[string]string
		for _, c := range set.ConfigMaps {
			if b.Spec.Config != nil && c.Name == b.Spec.Config.Name && c.Namespace == b.Spec.Config.Namespace {
				config = c.Data
			}
		}
		if config == nil {
			t.Errorf("Broker %s: its config ConfigMap does not exist", b.Name)
			continue
		}
		equal("Broker bootstrap.servers", config["bootstrap.servers"], bootstrap)
		sink, err := url.Parse(env("ingest", "K_SINK"))
		if err != nil {
			t.Errorf("ingest K_SINK: %v", err)
			continue
		}
		equal("ingest K_SINK", sink.String(), "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/"+b.Namespace+"/"+b.Name)
	}

	// RabbitMQ: the writer publishes into the queue the source consumes,
	// on the cluster the operator runs.
	if len(set.RabbitClusters) != 1 {
		t.Fatalf("want one RabbitmqCluster, found %d", len(set.RabbitClusters))
	}
	cluster, rsource := set.RabbitClusters[0], set.RabbitmqSources[0]
	queueName := env("rabbit-writer", "RABBITMQ_QUEUE")
	equal("RabbitmqSource queueName", rsource.Spec.Resources.QueueName, queueName)
	equal("RabbitmqSource cluster", rsource.Spec.ClusterReference.Name, cluster.Metadata.Name)
	if exchange := env("rabbit-writer", "RABBITMQ_EXCHANGE"); exchange == "" {
		equal("rabbit-writer RABBITMQ_ROUTING_KEY on the default exchange", env("rabbit-writer", "RABBITMQ_ROUTING_KEY"), queueName)
	} else if !slices.ContainsFunc(set.Exchanges, func(e *manifest.RabbitExchange) bool { return e.Spec.Name == exchange }) {
		t.Errorf("rabbit-writer RABBITMQ_EXCHANGE %q is not declared", exchange)
	}
	u, err := url.Parse(env("rabbit-writer", "RABBITMQ_URL"))
	if err != nil {
		t.Fatalf("rabbit-writer RABBITMQ_URL: %v", err)
	}
	equal("rabbit-writer RABBITMQ_URL host", u.Hostname(), cluster.Metadata.Name+"."+cluster.Metadata.Namespace+".svc.cluster.local")
	var queue *manifest.RabbitQueue
	for _, q := range set.Queues {
		equal("Queue "+q.Spec.Name+" cluster", q.Spec.ClusterReference.Name, cluster.Metadata.Name)
		if q.Spec.Name == queueName {
			queue = q
		}
	}
	if queue == nil {
		t.Fatalf("queue %q is not declared", queueName)
	}
	equal("queue type", queue.Spec.Type, "quorum")
	dlx, _ := queue.Spec.Arguments["x-dead-letter-exchange"].(string)
	dlKey, _ := queue.Spec.Arguments["x-dead-letter-routing-key"].(string)
	if !slices.ContainsFunc(set.Bindings, func(b *manifest.RabbitBinding) bool {
		return b.Spec.Source == dlx && b.Spec.RoutingKey == dlKey && slices.ContainsFunc(set.Queues, func(q *manifest.RabbitQueue) bool { return q.Spec.Name == b.Spec.Destination })
	}) {
		t.Errorf("queue %s dead-letters to exchange %q with key %q, which no binding routes to a declared queue", queueName, dlx, dlKey)
	}

	// In-cluster addresses name objects that exist.
	for _, key := range []string{"KAFKA_WRITER_ADDR", "RABBIT_WRITER_ADDR"} {
		host, _, _ := strings.Cut(env("publisher", key), ".")
		if s := set.Service(host); s == nil || s.Spec.Template.Spec.Containers[0].Ports[0].Name != "h2c" {
			t.Errorf("publisher %s names %q, not a gRPC (h2c) Service", key, env("publisher", key))
		}
		equal("publisher "+key, env("publisher", key), host+"."+namespace+".svc.cluster.local:80")
	}
	for _, s := range []string{"kafka-consumer", "rabbit-consumer", "dead-letter"} {
		u, err := url.Parse(env(s, "STORE_URL"))
		if err != nil {
			t.Errorf("%s STORE_URL: %v", s, err)
			continue
		}
		name, _, _ := strings.Cut(u.Hostname(), ".")
		if !slices.ContainsFunc(set.StatefulSets, func(ss *appsv1.StatefulSet) bool { return ss.Name == name }) {
			t.Errorf("%s STORE_URL names %q, which no StatefulSet runs", s, name)
		}
	}
	equal("kafka-consumer store", storeHost(env("kafka-consumer", "STORE_URL")), "redis")
	equal("rabbit-consumer store", storeHost(env("rabbit-consumer", "STORE_URL")), "valkey")

	// Every object of clima lives in its namespace.
	for key, file := range set.Files {
		kind, nsName, _ := strings.Cut(key, " ")
		ns, _, _ := strings.Cut(nsName, "/")
		switch {
		case kind == "Namespace":
		case strings.HasPrefix(file, "kafka-source/") && kind != "KafkaSource":
			equal(key+" namespace", ns, kafka.Metadata.Namespace)
		default:
			equal(key+" namespace", ns, namespace)
		}
	}
}

func storeHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(u.Hostname(), ".")
	return name
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// buildFunctions builds every function into a temporary folder.
func buildFunctions(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./functions/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the functions: %v\n%s", err, out)
	}
	return dir
}
