package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/clima-dev/clima/internal/manifest"
)

// KafkaStorage is how the embedded Kafka keeps its records and consumer
// group offsets.
type KafkaStorage string

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

// ParseKafkaStorage reads a -kafka-storage value.
func ParseKafkaStorage(s string) (KafkaStorage, error) {
	switch k := KafkaStorage(s); k {
	case KafkaMemory, KafkaDisk, KafkaFsync:
		return k, nil
	}
	return "", fmt.Errorf("kafka storage %q: want %s, %s or %s", s, KafkaMemory, KafkaDisk, KafkaFsync)
}

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

// rabbitInfra is the RabbitMQ server: the one at RABBITMQ_URL or on
// 127.0.0.1:5672, started when it is installed and not running.
type rabbitInfra struct {
	url     string
	started bool // by this runtime, so it stops it too
}

func startRabbit(ctx context.Context, rawURL string, log *slog.Logger) (*rabbitInfra, error) {
	r := &rabbitInfra{url: rawURL}
	if r.url == "" {
		r.url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if dialRabbit(r.url) == nil {
		return r, nil
	}
	server, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/rabbitmq-server"); statErr != nil {
			return nil, fmt.Errorf("RabbitMQ at %s does not answer and rabbitmq-server is not installed: run `make deps` or set RABBITMQ_URL", redact(r.url))
		}
		server = "/usr/sbin/rabbitmq-server"
	}
	log.Info("starting RabbitMQ", "server", server)
	if out, err := exec.CommandContext(ctx, server, "-detached").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("starting RabbitMQ: %v: %s", err, out)
	}
	r.started = true
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := dialRabbit(r.url)
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("RabbitMQ did not answer within 90s: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func dialRabbit(rawURL string) error {
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

func (r *rabbitInfra) close(log *slog.Logger) {
	if !r.started {
		return
	}
	ctl := "rabbitmqctl"
	if _, err := exec.LookPath(ctl); err != nil {
		ctl = "/usr/sbin/rabbitmqctl"
	}
	if out, err := exec.Command(ctl, "stop").CombinedOutput(); err != nil {
		log.Error("stopping RabbitMQ", "error", err, "output", string(out))
		return
	}
	log.Info("stopped RabbitMQ")
}

// declareTopology declares the queues, exchanges and bindings of
// rabbit-source/, as the Messaging Topology Operator does, with prefix
// before every name (so that runtimes sharing a server do not mix). It
// answers how many messages each queue already holds, ready for delivery.
func declareTopology(rawURL, prefix string, set *manifest.Set) (map[string]int, error) {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	for _, e := range set.Exchanges {
		if err := ch.ExchangeDeclare(prefix+e.Spec.Name, e.Spec.Type, e.Spec.Durable, false, false, false, nil); err != nil {
			return nil, fmt.Errorf("declaring exchange %s: %w", e.Spec.Name, err)
		}
	}
	ready := map[string]int{}
	for _, q := range set.Queues {
		args := amqp.Table{}
		for k, v := range q.Spec.Arguments {
			if s, ok := v.(string); ok && (k == "x-dead-letter-exchange" || k == "x-dead-letter-routing-key") {
				v = prefix + s
			}
			args[k] = v
		}
		if q.Spec.Type != "" {
			args["x-queue-type"] = q.Spec.Type
		}
		queue, err := ch.QueueDeclare(prefix+q.Spec.Name, q.Spec.Durable, false, false, false, args)
		if err != nil {
			return nil, fmt.Errorf("declaring queue %s (delete it if it was declared with other arguments, or start with -fresh): %w", prefix+q.Spec.Name, err)
		}
		ready[queue.Name] = queue.Messages
	}
	for _, b := range set.Bindings {
		if err := ch.QueueBind(prefix+b.Spec.Destination, prefix+b.Spec.RoutingKey, prefix+b.Spec.Source, false, nil); err != nil {
			return nil, fmt.Errorf("binding %s: %w", b.Metadata.Name, err)
		}
	}
	return ready, nil
}

// deleteTopology deletes what declareTopology declares, with what the
// queues hold (-fresh).
func deleteTopology(rawURL, prefix string, set *manifest.Set) error {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		return fmt.Errorf("connecting to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, q := range set.Queues {
		if _, err := ch.QueueDelete(prefix+q.Spec.Name, false, false, false); err != nil {
			return fmt.Errorf("deleting queue %s: %w", prefix+q.Spec.Name, err)
		}
	}
	for _, e := range set.Exchanges {
		if err := ch.ExchangeDelete(prefix+e.Spec.Name, false, false); err != nil {
			return fmt.Errorf("deleting exchange %s: %w", prefix+e.Spec.Name, err)
		}
	}
	return nil
}

// lockState makes the state folder one runtime's: two runtimes on one
// folder would write the same Kafka, Redis and Valkey data.
func lockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(f.Name())
		f.Close()
		return nil, fmt.Errorf("another clima dev (pid %s) runs with the state folder %s: stop it, or pass -state and -rabbitmq-prefix (they would share the RabbitMQ queues otherwise)", strings.TrimSpace(string(owner)), dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { _ = f.Close() }, nil
}

// keyValue is a Redis or Valkey server: found at a URL, or started here
// and restarted whenever it exits, as its StatefulSet would restart it.
type keyValue struct {
	name     string // the StatefulSet it stands in for
	addr     string
	password string
	binary   string
	args     []string
	log      *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	closing bool
}

// URL is the server's address with its password, for clients and clima stats.
func (kv *keyValue) URL() string {
	u := url.URL{Scheme: "redis", Host: kv.addr}
	if kv.password != "" {
		u.User = url.UserPassword("", kv.password)
	}
	return u.String()
}

// startKeyValue uses the server at rawURL, or starts one for the StatefulSet
// name: valkey-server for "valkey" when installed, redis-server otherwise,
// with append-only persistence under dir and a random password.
func startKeyValue(ctx context.Context, name, rawURL, dir string, log *slog.Logger) (*keyValue, error) {
	kv := &keyValue{name: name}
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%s URL: %w", name, err)
		}
		kv.addr = u.Host
		kv.password, _ = u.User.Password()
		return kv, pingKeyValue(ctx, kv)
	}
	kv.binary = "redis-server"
	if name == "valkey" {
		if _, err := exec.LookPath("valkey-server"); err == nil {
			kv.binary = "valkey-server"
		}
	}
	path, err := exec.LookPath(kv.binary)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed: run `make deps` (or apt-get install redis-server), or set %s_URL", kv.binary, strings.ToUpper(name))
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	kv.addr = "127.0.0.1:" + strconv.Itoa(port)
	kv.password = randomHex(16)
	kv.binary, kv.log = path, log
	// appendfsync always: a report the consumer was told is stored survives
	// a kill of the server.
	kv.args = []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", data,
		"--requirepass", kv.password, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(data, "server.log")}
	if err := kv.start(); err != nil {
		return nil, err
	}
	if err := pingKeyValue(ctx, kv); err != nil {
		kv.close()
		return nil, err
	}
	log.Info("started "+filepath.Base(path), "stands_in_for", name, "addr", kv.addr, "data", data)
	return kv, nil
}

// start runs the server and restarts it when it exits unasked.
func (kv *keyValue) start() error {
	cmd := exec.Command(kv.binary, kv.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", kv.binary, err)
	}
	exited := make(chan struct{})
	kv.mu.Lock()
	kv.cmd, kv.exited = cmd, exited
	kv.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
		kv.mu.Lock()
		closing := kv.closing
		kv.mu.Unlock()
		if closing {
			return
		}
		kv.log.Warn("store server exited; restarting it", "stands_in_for", kv.name, "state", cmd.ProcessState.String())
		time.Sleep(100 * time.Millisecond)
		if err := kv.start(); err != nil {
			kv.log.Error("restarting store server", "stands_in_for", kv.name, "error", err)
		}
	}()
	return nil
}

// pid is the running server's process id, 0 when it was not started here.
func (kv *keyValue) pid() int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.cmd == nil || kv.cmd.Process == nil {
		return 0
	}
	return kv.cmd.Process.Pid
}

func pingKeyValue(ctx context.Context, kv *keyValue) error {
	client := redis.NewClient(&redis.Options{Addr: kv.addr, Password: kv.password})
	defer client.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := client.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s at %s does not answer: %w", kv.name, kv.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (kv *keyValue) close() {
	kv.mu.Lock()
	kv.closing = true
	cmd, exited := kv.cmd, kv.exited
	kv.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides the password of a URL.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
