package infra

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

// Kafka is the Kafka the runtime uses: embedded unless KAFKA_BROKERS
// names one.
type Kafka struct {
	brokers []string
	cluster *kfake.Cluster
	// recovered is true when the embedded Kafka reloaded earlier data.
	recovered bool
}

// KafkaConfig says which Kafka to use and how to run an embedded one.
type KafkaConfig struct {
	// External names the brokers of a Kafka to use (KAFKA_BROKERS,
	// comma-separated); empty, the Kafka is embedded.
	External string
	// Storage and Dir: how and where the embedded Kafka keeps its data.
	Storage KafkaStorage
	Dir     string
	// MaxMessageBytes is the largest record the embedded Kafka takes (0:
	// Kafka's default, 1 MB).
	MaxMessageBytes int
}

// Topic is a topic the runtime creates, with its topic configs.
type Topic struct {
	Name       string
	Partitions int
	Configs    map[string]string
}

// StartKafka starts the embedded Kafka, or uses the external one, as cfg
// says; then it creates the topics.
func StartKafka(ctx context.Context, cfg KafkaConfig, topics []Topic, log *slog.Logger) (*Kafka, error) {
	external, storage, dir := cfg.External, cfg.Storage, cfg.Dir
	k := &Kafka{}
	if external != "" {
		k.brokers = strings.Split(external, ",")
		log.Info("using Kafka", "brokers", external)
	} else {
		configs := map[string]string{
			"log.segment.bytes":      strconv.Itoa(kafkaSegmentBytes),
			"log.cleaner.backoff.ms": strconv.FormatInt(kafkaRetentionCheck.Milliseconds(), 10),
		}
		if cfg.MaxMessageBytes > 0 {
			configs["message.max.bytes"] = strconv.Itoa(cfg.MaxMessageBytes)
		}
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.BrokerConfigs(configs),
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
		k.Close()
		return nil, err
	}
	return k, nil
}

// createTopics creates the topics that do not exist yet. The embedded
// Kafka's topics also get their configs (again, when reloaded) plus the
// retention bound that keeps its folder small.
func (k *Kafka) createTopics(ctx context.Context, topics []Topic) error {
	client := &kafka.Client{Addr: kafka.TCP(k.brokers...), Timeout: 10 * time.Second}
	var create []kafka.TopicConfig
	var alter []kafka.AlterConfigRequestResource
	for _, t := range topics {
		configs := maps.Clone(t.Configs)
		if k.cluster != nil {
			if configs == nil {
				configs = map[string]string{}
			}
			if _, ok := configs["retention.bytes"]; !ok {
				configs["retention.bytes"] = strconv.Itoa(kafkaRetentionBytes)
			}
		}
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: 1}
		ac := kafka.AlterConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Name}
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

// Pending is how many records of topic a consumer group has not committed
// yet: from its committed offset, or from the log start when it has none.
func (k *Kafka) Pending(topic, group string) int64 {
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
func (k *Kafka) dropped(topic, group string) int64 {
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

// Brokers are the addresses of the Kafka's brokers.
func (k *Kafka) Brokers() []string { return k.brokers }

// Embedded says whether the Kafka runs in this process.
func (k *Kafka) Embedded() bool { return k.cluster != nil }

// Recovered says whether the embedded Kafka reloaded an earlier run's data.
func (k *Kafka) Recovered() bool { return k.recovered }

// WatchRetention warns, until ctx ends, when the embedded Kafka's retention
// removes records that a consumer group (groups: by the topic each reads)
// had not committed: they will never be delivered.
func (k *Kafka) WatchRetention(ctx context.Context, groups map[string][]string, log *slog.Logger) {
	warned := map[string]int64{}
	ticker := time.NewTicker(kafkaRetentionCheck)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for topic, groups := range groups {
			for _, group := range groups {
				if n := k.dropped(topic, group); n > warned[topic+"/"+group] {
					log.Warn("Kafka retention removed records a consumer group had not delivered", "topic", topic,
						"group", group, "records", n, "bound_bytes_per_partition", kafkaRetentionBytes)
					warned[topic+"/"+group] = n
				}
			}
		}
	}
}

// Close stops the embedded Kafka.
func (k *Kafka) Close() {
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
