package writer

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/clima-dev/clima/events"
)

// KafkaConfig says where the Kafka writer publishes.
type KafkaConfig struct {
	Brokers []string
	Topic   string
}

// Kafka publishes each country group as one record keyed by the country, so
// that one country's reports keep their order within one partition.
type Kafka struct {
	cfg    KafkaConfig
	w      *kafka.Writer
	client *kafka.Client
}

// NewKafka returns a writer to cfg.Topic. It connects on first use.
func NewKafka(cfg KafkaConfig) *Kafka {
	transport := &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MetadataTTL: 30 * time.Second,
	}
	w := NewKafkaProducer(cfg.Brokers, cfg.Topic, 1_000_000, time.Microsecond) // Kafka's default message.max.bytes
	w.WriteBackoffMin, w.WriteBackoffMax = 20*time.Millisecond, 500*time.Millisecond
	w.Transport = transport
	return &Kafka{cfg: cfg, w: w, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 2 * time.Second, Transport: transport}}
}

// NewKafkaProducer is the kafka-go writer clima produces with, here and in
// clima dev's Broker: Kafka's own default partitioner, so that other
// clients agree on where a key's records go; acks=all; batches of at most
// maxBytes sent once linger has passed, instead of after kafka-go's 1 s
// default. kafka-go allocates room for BatchSize records per batch, so a
// small size keeps a small write cheap; a large one goes out in several.
func NewKafkaProducer(brokers []string, topic string, maxBytes int, linger time.Duration) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    256,
		BatchBytes:   int64(maxBytes),
		BatchTimeout: linger,
		MaxAttempts:  5,
	}
}

// Publish writes one record per country group, keyed by the country, and
// returns after every partition leader and its in-sync replicas have them
// (acks=all).
func (k *Kafka) Publish(ctx context.Context, reports []events.Report) error {
	groups, err := countryGroups(reports)
	if err != nil {
		return err
	}
	msgs := make([]kafka.Message, len(groups))
	for i, g := range groups {
		msgs[i] = kafka.Message{
			Key:     []byte(g.country),
			Value:   g.body,
			Headers: []kafka.Header{{Key: "content-type", Value: []byte(ContentType)}},
		}
	}
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		return unavailable("writing to Kafka topic "+k.cfg.Topic, err)
	}
	return nil
}

// Ping asks the brokers for the topic's metadata.
func (k *Kafka) Ping(ctx context.Context) error {
	meta, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.cfg.Topic}})
	if err != nil {
		return unavailable("reading Kafka metadata", err)
	}
	for _, t := range meta.Topics {
		if t.Name == k.cfg.Topic && t.Error == nil && len(t.Partitions) > 0 {
			return nil
		}
	}
	return unavailable("reading Kafka metadata", fmt.Errorf("topic %s does not exist", k.cfg.Topic))
}

// Close flushes pending batches and closes the connections.
func (k *Kafka) Close() error {
	if err := k.w.Close(); err != nil {
		return fmt.Errorf("closing Kafka writer: %w", err)
	}
	return nil
}
