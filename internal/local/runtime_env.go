package local

import (
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/clima-dev/clima/internal/manifest"
)

// here is where the things a manifest names by cluster DNS listen locally.
type here struct {
	services map[string]string // Knative Service → its local endpoint URL
	stores   map[string]string // StatefulSet → host:port of the server standing in
	kafka    []string          // Kafka's brokers
	rabbit   string            // RabbitMQ's URL
	broker   string            // the broker ingress's URL
}

// clusterRewriter maps the cluster's DNS names in a manifest's env to where
// the same things listen here.
func clusterRewriter(set *manifest.Set, local here) *strings.Replacer {
	pairs := map[string]string{}
	hosts := func(name, namespace string) []string {
		return []string{name + "." + namespace + ".svc.cluster.local", name + "." + namespace + ".svc"}
	}
	for name, url := range local.services {
		for _, h := range hosts(name, set.Service(name).Namespace) {
			pairs[h+":80"] = strings.TrimPrefix(url, "http://")
			pairs["http://"+h] = url
		}
	}
	for _, ks := range set.K8sServices {
		addr, ok := local.stores[ks.Name]
		if !ok {
			continue
		}
		for _, p := range ks.Spec.Ports {
			for _, h := range hosts(ks.Name, ks.Namespace) {
				pairs[h+":"+strconv.Itoa(int(p.Port))] = addr
			}
		}
	}
	for _, k := range set.Kafkas {
		for _, h := range hosts(k.Metadata.Name+"-kafka-bootstrap", k.Metadata.Namespace) {
			pairs[h+":9092"] = strings.Join(local.kafka, ",")
		}
	}
	rabbitHost := hostPort(local.rabbit)
	for _, c := range set.RabbitClusters {
		for _, h := range hosts(c.Metadata.Name, c.Metadata.Namespace) {
			pairs[h+":5672"] = rabbitHost
		}
	}
	for _, h := range []string{"kafka-broker-ingress.knative-eventing.svc.cluster.local", "broker-ingress.knative-eventing.svc.cluster.local"} {
		pairs["http://"+h] = local.broker
	}
	patterns := make([]string, 0, len(pairs))
	for p := range pairs {
		patterns = append(patterns, p)
	}
	// Longer patterns first: the replacer prefers earlier arguments.
	sort.Slice(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	args := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		args = append(args, p, pairs[p])
	}
	return strings.NewReplacer(args...)
}

// localSecrets gives every Secret key the manifests reference its local
// value: the stores' passwords are those the servers standing in were given
// (storeSecrets, by Secret key); a RabbitMQ user's credentials are those of
// the local RabbitMQ URL.
func localSecrets(set *manifest.Set, storeSecrets map[string]string, rabbitURL string) map[string]string {
	values := maps.Clone(storeSecrets)
	user, password := rabbitCredentials(rabbitURL)
	for _, u := range set.RabbitUsers {
		if s := u.Spec.ImportCredentialsSecret; s != nil {
			values[s.Name+"/username"] = user
			values[s.Name+"/password"] = password
		}
	}
	return values
}

// serviceEnv is a Service's environment here: its manifest's, with cluster
// names rewritten, Secrets resolved and RabbitMQ names prefixed, what
// Knative sets, and LISTEN_HOST: a function listens on loopback only, so
// that nothing but clima dev's endpoint reaches it.
func serviceEnv(s *servingv1.Service, set *manifest.Set, rewrite *strings.Replacer, secrets map[string]string, rabbitPrefix string) ([]string, error) {
	env := []string{"K_SERVICE=" + s.Name, "K_CONFIGURATION=" + s.Name, "K_REVISION=" + s.Name + "-00001", "LISTEN_HOST=127.0.0.1"}
	names := map[string]bool{}
	for _, q := range set.Queues {
		names[q.Spec.Name] = true
	}
	for _, e := range set.Exchanges {
		names[e.Spec.Name] = true
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		// In a pod Go sizes GOMAXPROCS to the container's CPU limit (Go
		// 1.25 reads cgroups); a local process has no cgroup, so it is
		// told the same.
		if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			env = append(env, "GOMAXPROCS="+strconv.FormatInt(max(1, cpu.Value()), 10))
		}
		for _, e := range c.Env {
			var value string
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				v, ok := secrets[ref]
				if !ok {
					return nil, fmt.Errorf("service %s: no local value for Secret key %s", s.Name, ref)
				}
				value = v
			case names[e.Value] && rabbitPrefix != "":
				value = rabbitPrefix + e.Value
			default:
				value = rewrite.Replace(e.Value)
			}
			env = append(env, e.Name+"="+value)
		}
	}
	return env, nil
}

func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

func rabbitCredentials(rawURL string) (string, string) {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return "guest", "guest"
	}
	password, _ := u.User.Password()
	return u.User.Username(), password
}
