// Package manifest reads clima's deployment manifests (knative/,
// kafka-source/, rabbit-source/) into Knative's own API types, and into
// small types of its own for the objects whose Go modules are not at hand
// (KafkaSource, RabbitmqSource, Strimzi's and the RabbitMQ operators'
// objects). The deployment tests check them; the local runtime runs them.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// Dirs are the folders whose manifests make up a deployment.
var Dirs = []string{"knative", "kafka-source", "rabbit-source"}

// Set is every object of a deployment, by kind.
type Set struct {
	Namespaces      []*corev1.Namespace
	ConfigMaps      []*corev1.ConfigMap
	K8sServices     []*corev1.Service
	StatefulSets    []*appsv1.StatefulSet
	NetworkPolicies []*networkingv1.NetworkPolicy
	Services        []*servingv1.Service
	Brokers         []*eventingv1.Broker
	Triggers        []*eventingv1.Trigger
	KafkaSources    []*KafkaSource
	RabbitmqSources []*RabbitmqSource
	KafkaTopics     []*KafkaTopic
	Kafkas          []*Object
	KafkaNodePools  []*Object
	RabbitClusters  []*Object
	Queues          []*RabbitQueue
	Exchanges       []*RabbitExchange
	Bindings        []*RabbitBinding
	RabbitUsers     []*RabbitUser
	Permissions     []*Object
	// Files maps each object ("Kind namespace/name") to the file it came from.
	Files map[string]string
}

// Object is the metadata of an object whose spec clima does not read.
type Object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   Meta              `json:"metadata"`
	Spec       map[string]any    `json:"spec"`
	Data       map[string]string `json:"data,omitempty"`
}

// Meta is the part of ObjectMeta clima reads.
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// KafkaTopic (kafka.strimzi.io/v1beta2).
type KafkaTopic struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

// Name is the topic's name in Kafka.
func (t *KafkaTopic) Name() string {
	if t.Spec.TopicName != "" {
		return t.Spec.TopicName
	}
	return t.Metadata.Name
}

// RabbitQueue (rabbitmq.com/v1beta1 Queue).
type RabbitQueue struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		Name             string         `json:"name"`
		Type             string         `json:"type,omitempty"`
		Durable          bool           `json:"durable,omitempty"`
		Arguments        map[string]any `json:"arguments,omitempty"`
		ClusterReference struct {
			Name string `json:"name"`
		} `json:"rabbitmqClusterReference"`
	} `json:"spec"`
}

// RabbitExchange (rabbitmq.com/v1beta1 Exchange).
type RabbitExchange struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		Name             string `json:"name"`
		Type             string `json:"type,omitempty"`
		Durable          bool   `json:"durable,omitempty"`
		ClusterReference struct {
			Name string `json:"name"`
		} `json:"rabbitmqClusterReference"`
	} `json:"spec"`
}

// RabbitBinding (rabbitmq.com/v1beta1 Binding).
type RabbitBinding struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		Source          string `json:"source"`
		Destination     string `json:"destination"`
		DestinationType string `json:"destinationType"`
		RoutingKey      string `json:"routingKey,omitempty"`
	} `json:"spec"`
}

// RabbitUser (rabbitmq.com/v1beta1 User).
type RabbitUser struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		ImportCredentialsSecret *struct {
			Name string `json:"name"`
		} `json:"importCredentialsSecret,omitempty"`
	} `json:"spec"`
}

// Load reads every YAML file of the folders under root.
func Load(root string, dirs ...string) (*Set, error) {
	set := &Set{Files: map[string]string{}}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			if err := set.loadFile(root, f); err != nil {
				return nil, err
			}
		}
	}
	return set, nil
}

func (s *Set) loadFile(root, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, path)
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", rel, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := s.add(rel, doc); err != nil {
			return fmt.Errorf("%s: document %d: %w", rel, i, err)
		}
	}
}

func (s *Set) add(file string, doc []byte) error {
	jsonDoc, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	var head Object
	if err := json.Unmarshal(jsonDoc, &head); err != nil {
		return err
	}
	key := head.Kind + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
	if prev, dup := s.Files[key]; dup {
		return fmt.Errorf("%s is defined twice (also in %s)", key, prev)
	}
	s.Files[key] = file

	// Kubernetes and Knative types are decoded strictly, so a misspelt
	// field fails here instead of being dropped by the API server.
	strict := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(jsonDoc))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	loose := func(v any) error { return json.Unmarshal(jsonDoc, v) }

	switch head.APIVersion + " " + head.Kind {
	case "v1 Namespace":
		return into(strict, &s.Namespaces)
	case "v1 ConfigMap":
		return into(strict, &s.ConfigMaps)
	case "v1 Service":
		return into(strict, &s.K8sServices)
	case "apps/v1 StatefulSet":
		return into(strict, &s.StatefulSets)
	case "networking.k8s.io/v1 NetworkPolicy":
		return into(strict, &s.NetworkPolicies)
	case "serving.knative.dev/v1 Service":
		return into(strict, &s.Services)
	case "eventing.knative.dev/v1 Broker":
		return into(strict, &s.Brokers)
	case "eventing.knative.dev/v1 Trigger":
		return into(strict, &s.Triggers)
	case "sources.knative.dev/v1 KafkaSource":
		return into(loose, &s.KafkaSources)
	case "sources.knative.dev/v1alpha1 RabbitmqSource":
		return into(loose, &s.RabbitmqSources)
	case "kafka.strimzi.io/v1beta2 KafkaTopic":
		return into(loose, &s.KafkaTopics)
	case "kafka.strimzi.io/v1beta2 Kafka":
		return into(loose, &s.Kafkas)
	case "kafka.strimzi.io/v1beta2 KafkaNodePool":
		return into(loose, &s.KafkaNodePools)
	case "rabbitmq.com/v1beta1 RabbitmqCluster":
		return into(loose, &s.RabbitClusters)
	case "rabbitmq.com/v1beta1 Queue":
		return into(loose, &s.Queues)
	case "rabbitmq.com/v1beta1 Exchange":
		return into(loose, &s.Exchanges)
	case "rabbitmq.com/v1beta1 Binding":
		return into(loose, &s.Bindings)
	case "rabbitmq.com/v1beta1 User":
		return into(loose, &s.RabbitUsers)
	case "rabbitmq.com/v1beta1 Permission":
		return into(loose, &s.Permissions)
	}
	return fmt.Errorf("unexpected object %s %s", head.APIVersion, head.Kind)
}

// into decodes a document with decode and appends it to list.
func into[T any](decode func(any) error, list *[]*T) error {
	v := new(T)
	if err := decode(v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// Service returns the Knative Service of that name, or nil.
func (s *Set) Service(name string) *servingv1.Service {
	for _, svc := range s.Services {
		if svc.Name == name {
			return svc
		}
	}
	return nil
}

// Env returns a container's variables with literal values; those that come
// from a Secret are returned in secrets, as "secret/key".
func Env(svc *servingv1.Service) (values map[string]string, secrets map[string]string) {
	values, secrets = map[string]string{}, map[string]string{}
	for _, c := range svc.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			default:
				values[e.Name] = e.Value
			}
		}
	}
	return values, secrets
}

// ImportPath is the Go import path of a Service's ko:// image.
func ImportPath(svc *servingv1.Service) (string, bool) {
	for _, c := range svc.Spec.Template.Spec.Containers {
		if path, ok := strings.CutPrefix(c.Image, "ko://"); ok {
			return path, true
		}
	}
	return "", false
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }

// StoreUser is a user a Redis or Valkey StatefulSet defines on its server's
// command line (--user <name> on >$(VAR) <rules>…), its password from the
// Secret key ("secret/key") the container's env VAR is read from.
type StoreUser struct {
	Name, PasswordSecret string
	Rules                []string
}

// StoreUsers reads the users a store's StatefulSet defines, and the Secret
// key of its administrator's password (--requirepass $(VAR)).
func StoreUsers(ss *appsv1.StatefulSet) (adminSecret string, users []StoreUser, err error) {
	if len(ss.Spec.Template.Spec.Containers) != 1 {
		return "", nil, fmt.Errorf("StatefulSet %s: want one container", ss.Name)
	}
	c := ss.Spec.Template.Spec.Containers[0]
	secretOf := func(ref string) (string, error) {
		name, ok := strings.CutPrefix(ref, "$(")
		name, ok2 := strings.CutSuffix(name, ")")
		for _, e := range c.Env {
			if ok && ok2 && e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key, nil
			}
		}
		return "", fmt.Errorf("StatefulSet %s: a password must be $(VAR) with VAR from a Secret, not %q", ss.Name, ref)
	}
	args := c.Args
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--requirepass":
			if i+1 == len(args) {
				return "", nil, fmt.Errorf("StatefulSet %s: --requirepass without a password", ss.Name)
			}
			if adminSecret, err = secretOf(args[i+1]); err != nil {
				return "", nil, err
			}
		case "--user":
			end := i + 1
			for end < len(args) && !strings.HasPrefix(args[end], "--") {
				end++
			}
			def := args[i+1 : end]
			if len(def) < 3 || def[1] != "on" || !strings.HasPrefix(def[2], ">") {
				return "", nil, fmt.Errorf("StatefulSet %s: want --user <name> on >$(VAR) <rules>…, got %q", ss.Name, def)
			}
			secret, err := secretOf(def[2][1:])
			if err != nil {
				return "", nil, err
			}
			users = append(users, StoreUser{Name: def[0], PasswordSecret: secret, Rules: def[3:]})
			i = end - 1
		}
	}
	if adminSecret == "" {
		return "", nil, fmt.Errorf("StatefulSet %s: no --requirepass $(VAR)", ss.Name)
	}
	return adminSecret, users, nil
}
