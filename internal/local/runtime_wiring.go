package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/local/infra"
	"github.com/clima-dev/clima/internal/manifest"
)

func brokerTopic(namespace, name string) string { return "knative-broker-" + namespace + "-" + name }

// topics are the KafkaTopics of kafka-source/, with their configs, and one
// topic per Broker.
func (r *runtime) topics() []infra.Topic {
	var topics []infra.Topic
	for _, t := range r.set.KafkaTopics {
		configs := map[string]string{}
		for name, value := range t.Spec.Config {
			configs[name] = configValue(value)
		}
		topics = append(topics, infra.Topic{Name: t.Name(), Partitions: int(t.Spec.Partitions), Configs: configs})
	}
	for _, b := range r.set.Brokers {
		partitions := 1
		for _, c := range r.set.ConfigMaps {
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

// consumerGroups are the Kafka consumer groups of the Triggers and the
// KafkaSources, by the topic each reads.
func (r *runtime) consumerGroups() map[string][]string {
	groups := map[string][]string{}
	for _, t := range r.set.Triggers {
		topic := brokerTopic(t.Namespace, t.Spec.Broker)
		groups[topic] = append(groups[topic], triggerGroup(t.Namespace, t.Name))
	}
	for _, ks := range r.set.KafkaSources {
		for _, topic := range ks.Spec.Topics {
			groups[topic] = append(groups[topic], ks.Spec.ConsumerGroup)
		}
	}
	return groups
}

// triggerGroup is a Trigger's consumer group, named as the Kafka broker
// names it.
func triggerGroup(namespace, name string) string { return "knative-trigger-" + namespace + "-" + name }

// kafkaPending says, per topic and consumer group, how many records the
// reloaded embedded Kafka holds that the group has not committed: what
// the Triggers and the KafkaSource will deliver now.
func (r *runtime) kafkaPending(dir string) []string {
	lines := []string{"Kafka data reloaded from " + dir + "; records not yet delivered, per topic and consumer group:"}
	groups := r.consumerGroups()
	for _, topic := range slices.Sorted(maps.Keys(groups)) {
		for _, group := range groups[topic] {
			lines = append(lines, fmt.Sprintf("  %-30s %-40s %d", topic, group, r.kafka.Pending(topic, group)))
		}
	}
	return lines
}

// resolve gives where a destination is here: a Service's local endpoint
// (which holds a request until a replica is ready, as the activator does),
// or the URI as it is.
func (r *runtime) resolve(d *duckv1.Destination) (duckv1.Addressable, error) {
	if d == nil {
		return duckv1.Addressable{}, errors.New("no destination")
	}
	if d.Ref != nil {
		if d.Ref.Kind != "Service" {
			return duckv1.Addressable{}, fmt.Errorf("destination %s %s: only Knative Services are supported locally", d.Ref.Kind, d.Ref.Name)
		}
		svc, ok := r.services[d.Ref.Name]
		if !ok {
			return duckv1.Addressable{}, fmt.Errorf("destination Service %s does not exist", d.Ref.Name)
		}
		u, err := apis.ParseURL(svc.URL())
		if err != nil {
			return duckv1.Addressable{}, err
		}
		if d.URI != nil {
			u.Path = d.URI.Path
		}
		return duckv1.Addressable{URL: u}, nil
	}
	if d.URI != nil {
		return duckv1.Addressable{URL: d.URI}, nil
	}
	return duckv1.Addressable{}, errors.New("destination has neither ref nor uri")
}

// resolveDeadLetter resolves a delivery spec's dead-letter sink, if any.
func (r *runtime) resolveDeadLetter(d *eventingduckv1.DeliverySpec) (*duckv1.Addressable, error) {
	if d == nil || d.DeadLetterSink == nil {
		return nil, nil
	}
	dest, err := r.resolve(d.DeadLetterSink)
	if err != nil {
		return nil, err
	}
	return &dest, nil
}

func (r *runtime) startDispatchers(ctx context.Context) error {
	flags, err := manifest.ReleaseFeatures(r.opts.Root)
	if err != nil {
		return err
	}
	send := newSender(r.log)
	r.sender = send
	for _, t := range r.set.Triggers {
		b, ok := r.brokers[t.Namespace+"/"+t.Spec.Broker]
		if !ok {
			return fmt.Errorf("trigger %s: Broker %s does not exist", t.Name, t.Spec.Broker)
		}
		subscriber, err := r.resolve(&t.Spec.Subscriber)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		delivery := t.Spec.Delivery
		if delivery == nil {
			for _, broker := range r.set.Brokers {
				if broker.Name == t.Spec.Broker {
					delivery = broker.Spec.Delivery
				}
			}
		}
		deadLetter, err := r.resolveDeadLetter(delivery)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		p, err := newPolicy(delivery, deadLetter, nil, flags)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		tr := &trigger{name: t.Name, filter: triggerFilter(t.Spec), subscriber: subscriber, policy: p, broker: b, sender: send}
		r.triggers = append(r.triggers, tr)
		r.loops = append(r.loops, newKafkaLoop(r.kafka.Brokers(), triggerGroup(t.Namespace, t.Name), []string{b.topic}, 256, r.log, tr.handle))
	}
	for _, ks := range r.set.KafkaSources {
		sink, err := r.resolve(&ks.Spec.Sink)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		deadLetter, err := r.resolveDeadLetter(ks.Spec.Delivery)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", ks.Metadata.Name, err)
		}
		p, err := newPolicy(ks.Spec.Delivery, deadLetter, nil, flags)
		if err != nil {
			return err
		}
		src := &kafkaSource{namespace: ks.Metadata.Namespace, name: ks.Metadata.Name, sink: sink, policy: p, sender: send}
		r.kSources = append(r.kSources, src)
		workers := 256
		if ks.Spec.Ordering != "unordered" {
			workers = 1 // ordered: one record at a time
		}
		r.loops = append(r.loops, newKafkaLoop(r.kafka.Brokers(), ks.Spec.ConsumerGroup, ks.Spec.Topics, workers, r.log, src.handle))
	}
	for _, rs := range r.set.RabbitmqSources {
		sink, err := r.resolve(&rs.Spec.Sink)
		if err != nil {
			return fmt.Errorf("rabbitmq source %s: %w", rs.Metadata.Name, err)
		}
		p, err := newPolicy(rs.Spec.Delivery, nil, rabbitCheckRetry, flags)
		if err != nil {
			return err
		}
		parallelism := 1
		if rs.Spec.Resources.Parallelism != nil {
			parallelism = *rs.Spec.Resources.Parallelism
		}
		r.rSources = append(r.rSources, &rabbitSource{namespace: rs.Metadata.Namespace, name: rs.Metadata.Name, url: r.rabbit.URL(),
			queue: r.opts.RabbitPrefix + rs.Spec.Resources.QueueName, parallelism: parallelism, sink: sink, policy: p, sender: send, log: r.log})
	}
	for _, l := range r.loops {
		r.dispatchWG.Go(func() { l.run(ctx) })
	}
	for _, s := range r.rSources {
		r.dispatchWG.Go(func() { s.run(ctx) })
	}
	return nil
}

func (r *runtime) routeBroker(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if len(parts) == 2 {
		if b, ok := r.brokers[parts[0]+"/"+parts[1]]; ok {
			b.ServeHTTP(w, req)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no broker at "+req.URL.Path+"; the brokers are at /<namespace>/<name>")
}
