package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	// KafkaMemory keeps them in memory: a stop or a crash of clima dev
	// loses every record not yet delivered.
	KafkaMemory KafkaStorage = "memory"
	// KafkaDisk writes every produce to the data folder before answering
	// it: what was acknowledged survives a crash of clima dev (the kernel's
	// page cache holds the writes), not a power loss.
	KafkaDisk KafkaStorage = "disk"
	// KafkaFsync also fsyncs every produce before answering it, as a Kafka
	// broker with log.flush.interval.messages=1: it survives a power loss.
	KafkaFsync KafkaStorage = "fsync"
)

const (
	// kafkaRetentionBytes bounds each partition of the embedded Kafka on
	// disk (a cluster's Kafka has no such bound by default): 1 GiB holds
	// hours of a stalled pipeline under `clima load`, and records older
	// than the bound are dropped like any Kafka's, delivered or not.
	kafkaRetentionBytes = 1 << 30
	// kafkaSegmentBytes is the unit retention frees: a partition's folder
	// stays under kafkaRetentionBytes plus one segment.
	kafkaSegmentBytes = 64 << 20
	// kafkaRetentionCheck is how often retention runs.
	kafkaRetentionCheck = time.Minute
)

// KafkaStorage is how the embedded Kafka keeps its records and consumer
// group offsets.
type KafkaStorage string

// ParseKafkaStorage reads a -kafka-storage value.
func ParseKafkaStorage(s string) (KafkaStorage, error) {
	switch k := KafkaStorage(s); k {
	case KafkaMemory, KafkaDisk, KafkaFsync:
		return k, nil
	}
	return "", fmt.Errorf("kafka storage %q: want %s, %s or %s", s, KafkaMemory, KafkaDisk, KafkaFsync)
}

// kafkaInfra is the Kafka the runtime uses: embedded unless KAFKA_BROKERS
// names one.
type kafkaInfra struct {
	brokers []string
	cluster *kfake.Cluster
	// recovered is true when the embedded Kafka reloaded earlier data.
	recovered bool
}

// kafkaTopic is a topic the runtime creates, with its topic configs.
type kafkaTopic struct {
	name       string
	partitions int
	configs    map[string]string
}

// startKafka starts the embedded Kafka, keeping its data in dir as storage
// says, or uses the external one; then it creates the topics.
func startKafka(ctx context.Context, external string, storage KafkaStorage, dir string, topics []kafkaTopic, log *slog.Logger) (*kafkaInfra, error) {
	k := &kafkaInfra{}
	if external != "" {
		k.brokers = strings.Split(external, ",")
		log.Info("using Kafka", "brokers", external)
	} else {
		opts := []kfake.Opt{kfake.NumBrokers(1),
			kfake.BrokerConfigs(map[string]string{
				"message.max.bytes":      strconv.Itoa(MaxEventBytes),
				"log.segment.bytes":      strconv.Itoa(kafkaSegmentBytes),
				"log.cleaner.backoff.ms": strconv.FormatInt(kafkaRetentionCheck.Milliseconds(), 10),
			}),
			kfake.WithLogger(kfakeLogger{log}),
			kfake.ListenFn(func(network, _ string) (net.Listener, error) {
				return net.Listen(network, "127.0.0.1:0")
			})}
		if storage != KafkaMemory {
			opts = append(opts, kfake.DataDir(dir))
			if storage == KafkaFsync {
				opts = append(opts, kfake.SyncWrites())
			}
			_, err := os.Stat(filepath.Join(dir, "meta.json"))
			k.recovered = err == nil
		}
		cluster, err := kfake.NewCluster(opts...)
		if err != nil {
			if storage != KafkaMemory {
				return nil, fmt.Errorf("the embedded Kafka cannot read its data in %s (%w): start from empty data with `clima dev -fresh` (make run ARGS=-fresh)", dir, err)
			}
			return nil, fmt.Errorf("starting embedded Kafka: %w", err)
		}
		k.cluster, k.brokers = cluster, cluster.ListenAddrs()
		log.Info("started embedded Kafka", "addr", k.brokers[0], "storage", string(storage), "data", dir, "recovered", k.recovered)
	}
	if err := k.createTopics(ctx, topics); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

// createTopics creates the topics that do not exist yet. The embedded
// Kafka's topics also get their configs (again, when reloaded) plus the
// retention bound that keeps its folder small.
func (k *kafkaInfra) createTopics(ctx context.Context, topics []kafkaTopic) error {
	client := &kafka.Client{Addr: kafka.TCP(k.brokers...), Timeout: 10 * time.Second}
	var create []kafka.TopicConfig
	var alter []kafka.AlterConfigRequestResource
	for _, t := range topics {
		configs := maps.Clone(t.configs)
		if k.cluster != nil {
			if configs == nil {
				configs = map[string]string{}
			}
			if _, ok := configs["retention.bytes"]; !ok {
				configs["retention.bytes"] = strconv.Itoa(kafkaRetentionBytes)
			}
		}
		tc := kafka.TopicConfig{Topic: t.name, NumPartitions: t.partitions, ReplicationFactor: 1}
		ac := kafka.AlterConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: t.name}
		for _, name := range slices.Sorted(maps.Keys(configs)) {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: name, ConfigValue: configs[name]})
			ac.Configs = append(ac.Configs, kafka.AlterConfigRequestConfig{Name: name, Value: configs[name]})
		}
		create = append(create, tc)
		alter = append(alter, ac)
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
	if err != nil {
		return fmt.Errorf("creating Kafka topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("creating Kafka topic %s: %w", topic, err)
		}
	}
	if k.cluster == nil {
		return nil // an external Kafka's topic configs are its operator's
	}
	altered, err := client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: alter})
	if err != nil {
		return fmt.Errorf("configuring Kafka topics: %w", err)
	}
	for resource, err := range altered.Errors {
		if err != nil {
			return fmt.Errorf("configuring Kafka topic %s: %w", resource.Name, err)
		}
	}
	return nil
}

// pending is how many records of topic a consumer group has not committed
// yet: from its committed offset, or from the log start when it has none.
func (k *kafkaInfra) pending(topic, group string) int64 {
	var commits map[int32]kfake.GroupCommit
	if g := k.cluster.GroupInfo(group); g != nil {
		commits = g.Commits[topic]
	}
	var n int64
	for _, p := range k.cluster.PartitionInfos(topic) {
		from := p.LogStartOffset
		if c, ok := commits[p.Partition]; ok && c.Offset > from {
			from = c.Offset
		}
		n += max(0, p.HighWatermark-from)
	}
	return n
}

// dropped is how many records of topic retention removed before group
// committed them: records lost to the group.
func (k *kafkaInfra) dropped(topic, group string) int64 {
	g := k.cluster.GroupInfo(group)
	if g == nil {
		return 0
	}
	var n int64
	for _, p := range k.cluster.PartitionInfos(topic) {
		if c, ok := g.Commits[topic][p.Partition]; ok && p.LogStartOffset > c.Offset {
			n += p.LogStartOffset - c.Offset
		}
	}
	return n
}

func (k *kafkaInfra) close() {
	if k.cluster != nil {
		k.cluster.Close() // with a data folder: saves its state and syncs
	}
}

// kfakeLogger passes the embedded Kafka's warnings and errors (a failed
// write to its data folder among them) to the runtime's log.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error("embedded Kafka: " + fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Warn("embedded Kafka: " + fmt.Sprintf(format, args...))
	}
}
