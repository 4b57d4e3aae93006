package eventing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/metric"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/local/infra"
	"github.com/clima-dev/clima/internal/manifest"
)

// Config is what the data plane is made of and runs on.
type Config struct {
	Set *manifest.Set
	// IngressURL is where the runtime serves the plane (ServeHTTP): each
	// Broker's address is IngressURL/<namespace>/<name>.
	IngressURL string
	// Kafka are the brokers of the Kafka that holds the Brokers' topics and
	// the KafkaSources'; RabbitURL the RabbitMQ of the RabbitmqSources, whose
	// queue names get RabbitPrefix before them.
	Kafka        []string
	RabbitURL    string
	RabbitPrefix string
	// Features are the Eventing release's feature flags.
	Features feature.Flags
	// Resolve gives a destination's address: a Service's local endpoint.
	Resolve func(*duckv1.Destination) (duckv1.Addressable, error)
	// Meter records every delivery's kn.eventing.dispatch.duration; nil
	// records nothing.
	Meter metric.MeterProvider
	Log   *slog.Logger
}

// Plane is every Broker, Trigger and source of the manifests.
type Plane struct {
	brokers  map[string]*broker // by "namespace/name"
	triggers []*trigger
	kSources []*kafkaSource
	rSources []*rabbitSource
	loops    []*kafkaLoop
	sender   *sender
}

// New makes the data plane of cfg.Set; nothing runs before Run.
func New(cfg Config) (*Plane, error) {
	p := &Plane{brokers: map[string]*broker{}, sender: newSender(cfg.Meter, cfg.Log)}
	for _, b := range cfg.Set.Brokers {
		address, err := apis.ParseURL(cfg.IngressURL + "/" + b.Namespace + "/" + b.Name)
		if err != nil {
			return nil, err
		}
		topic := brokerTopic(b.Namespace, b.Name)
		p.brokers[b.Namespace+"/"+b.Name] = &broker{namespace: b.Namespace, name: b.Name, address: duckv1.Addressable{URL: address},
			topic: topic, writer: newBrokerWriter(cfg.Kafka, topic), log: cfg.Log}
	}
	deadLetterOf := func(d *eventingduckv1.DeliverySpec) (*duckv1.Addressable, error) {
		if d == nil || d.DeadLetterSink == nil {
			return nil, nil
		}
		dest, err := cfg.Resolve(d.DeadLetterSink)
		if err != nil {
			return nil, err
		}
		return &dest, nil
	}
	for _, t := range cfg.Set.Triggers {
		b, ok := p.brokers[t.Namespace+"/"+t.Spec.Broker]
		if !ok {
			return nil, fmt.Errorf("trigger %s: Broker %s does not exist", t.Name, t.Spec.Broker)
		}
		subscriber, err := cfg.Resolve(&t.Spec.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		delivery := t.Spec.Delivery
		if delivery == nil { // a Trigger without one inherits its Broker's
			for _, broker := range cfg.Set.Brokers {
				if broker.Name == t.Spec.Broker {
					delivery = broker.Spec.Delivery
				}
			}
		}
		deadLetter, err := deadLetterOf(delivery)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		pol, err := newPolicy(delivery, deadLetter, nil, cfg.Features)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		pol.labels = triggerLabels(t.Namespace, t.Name, t.Spec.Broker)
		tr := &trigger{name: t.Name, filter: triggerFilter(t.Spec), subscriber: subscriber, policy: pol, broker: b, sender: p.sender}
		p.triggers = append(p.triggers, tr)
		p.loops = append(p.loops, newKafkaLoop(cfg.Kafka, triggerGroup(t.Namespace, t.Name), []string{b.topic}, 256, cfg.Log, tr.handle))
	}
	for _, ks := range cfg.Set.KafkaSources {
		sink, err := cfg.Resolve(&ks.Spec.Sink)
		if err != nil {
			return nil, fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		deadLetter, err := deadLetterOf(ks.Spec.Delivery)
		if err != nil {
			return nil, fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		pol, err := newPolicy(ks.Spec.Delivery, deadLetter, nil, cfg.Features)
		if err != nil {
			return nil, err
		}
		pol.labels = sourceLabels(ks.Metadata.Namespace, ks.Metadata.Name, "kafkasources.sources.knative.dev")
		src := &kafkaSource{namespace: ks.Metadata.Namespace, name: ks.Metadata.Name, sink: sink, policy: pol, sender: p.sender}
		p.kSources = append(p.kSources, src)
		workers := 256
		if ks.Spec.Ordering != "unordered" {
			workers = 1 // ordered: one record at a time
		}
		p.loops = append(p.loops, newKafkaLoop(cfg.Kafka, ks.Spec.ConsumerGroup, ks.Spec.Topics, workers, cfg.Log, src.handle))
	}
	for _, rs := range cfg.Set.RabbitmqSources {
		sink, err := cfg.Resolve(&rs.Spec.Sink)
		if err != nil {
			return nil, fmt.Errorf("rabbitmq source %s: %w", rs.Metadata.Name, err)
		}
		pol, err := newPolicy(rs.Spec.Delivery, nil, rabbitCheckRetry, cfg.Features)
		if err != nil {
			return nil, err
		}
		pol.labels = sourceLabels(rs.Metadata.Namespace, rs.Metadata.Name, "rabbitmqsources.sources.knative.dev")
		parallelism := 1
		if rs.Spec.Resources.Parallelism != nil {
			parallelism = *rs.Spec.Resources.Parallelism
		}
		p.rSources = append(p.rSources, &rabbitSource{namespace: rs.Metadata.Namespace, name: rs.Metadata.Name, url: cfg.RabbitURL,
			queue: cfg.RabbitPrefix + rs.Spec.Resources.QueueName, parallelism: parallelism, sink: sink, policy: pol, sender: p.sender, log: cfg.Log})
	}
	return p, nil
}

// Run dispatches, every Trigger and source at once, until ctx ends; it
// returns once each has stopped (what was in flight is not committed, and
// is delivered again by the next run).
func (p *Plane) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range p.loops {
		wg.Go(func() { l.run(ctx) })
	}
	for _, s := range p.rSources {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
}

// ServeHTTP is the Brokers' ingress: POST /<namespace>/<name>, as the Kafka
// broker's receiver finds a Broker by the path.
func (p *Plane) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if len(parts) == 2 {
		if b, ok := p.brokers[parts[0]+"/"+parts[1]]; ok {
			b.ServeHTTP(w, req)
			return
		}
	}
	apierr.Write(w, apierr.New(http.StatusNotFound, "no broker at %s; the brokers are at /<namespace>/<name>", req.URL.Path))
}

// BrokerAddresses are the Brokers' ingress URLs.
func (p *Plane) BrokerAddresses() []string {
	var urls []string
	for _, b := range p.brokers {
		urls = append(urls, b.address.URL.String())
	}
	return urls
}

// Status is what each dispatcher did, by "trigger/<name>",
// "kafkasource/<name>" and "rabbitmqsource/<name>".
func (p *Plane) Status() map[string]DispatcherStatus {
	st := map[string]DispatcherStatus{}
	for _, t := range p.triggers {
		st["trigger/"+t.name] = t.status()
	}
	for _, s := range p.kSources {
		st["kafkasource/"+s.name] = s.status()
	}
	for _, s := range p.rSources {
		st["rabbitmqsource/"+s.name] = s.status()
	}
	return st
}

// DuplicateDeliveries makes every dispatcher deliver each event twice, as
// an at-least-once platform may: a fault to prove the consumers idempotent.
func (p *Plane) DuplicateDeliveries(on bool) { p.sender.duplicate.Store(on) }

// Close flushes and closes the Brokers' topic writers.
func (p *Plane) Close() {
	for _, b := range p.brokers {
		_ = b.writer.Close()
	}
}

// brokerTopic is a Broker's topic, named as the Kafka broker names it.
func brokerTopic(namespace, name string) string { return "knative-broker-" + namespace + "-" + name }

// triggerGroup is a Trigger's consumer group, named as the Kafka broker
// names it.
func triggerGroup(namespace, name string) string { return "knative-trigger-" + namespace + "-" + name }

// Topics are the Kafka topics the plane needs: the KafkaTopics of the
// manifests, with their configs, and one per Broker, with the partitions
// of its config.
func Topics(set *manifest.Set) []infra.Topic {
	var topics []infra.Topic
	for _, t := range set.KafkaTopics {
		configs := map[string]string{}
		for name, value := range t.Spec.Config {
			configs[name] = configValue(value)
		}
		topics = append(topics, infra.Topic{Name: t.Name(), Partitions: int(t.Spec.Partitions), Configs: configs})
	}
	for _, b := range set.Brokers {
		partitions := 1
		for _, c := range set.ConfigMaps {
			if b.Spec.Config != nil && c.Name == b.Spec.Config.Name && c.Namespace == b.Spec.Config.Namespace {
				if n, err := strconv.Atoi(c.Data["default.topic.partitions"]); err == nil {
					partitions = n
				}
			}
		}
		topics = append(topics, infra.Topic{Name: brokerTopic(b.Namespace, b.Name), Partitions: partitions})
	}
	return topics
}

// configValue is a KafkaTopic config value as Kafka takes it: YAML numbers
// arrive as float64 (604800000, not 6.048e+08).
func configValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// ConsumerGroups are the Kafka consumer groups of the Triggers and the
// KafkaSources, by the topic each reads.
func ConsumerGroups(set *manifest.Set) map[string][]string {
	groups := map[string][]string{}
	for _, t := range set.Triggers {
		topic := brokerTopic(t.Namespace, t.Spec.Broker)
		groups[topic] = append(groups[topic], triggerGroup(t.Namespace, t.Name))
	}
	for _, ks := range set.KafkaSources {
		for _, topic := range ks.Spec.Topics {
			groups[topic] = append(groups[topic], ks.Spec.ConsumerGroup)
		}
	}
	return groups
}
