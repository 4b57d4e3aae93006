package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/local/infra"
)

func dev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("clima dev", flag.ContinueOnError)
	root := fs.String("root", ".", "the clima repository: manifests and Go module")
	state := fs.String("state", ".clima", "folder for binaries, logs, store data and endpoints.json")
	addr := fs.String("addr", "127.0.0.1:8080", "where the broker ingress listens")
	dashboardAddr := fs.String("dashboard-addr", "127.0.0.1:3000", "where the dashboard of grafana/dashboard.json is served")
	idle := fs.Duration("scale-to-zero-after", 30*time.Second, "Knative's scale-to-zero grace period: how long the last replica stays once the autoscaler wants none")
	annotate := fs.String("annotate", "", "override Services' annotations, as service:key=value,… (kafka-writer:autoscaling.knative.dev/min-scale=2)")
	autoscalerSettings := fs.String("autoscaler", "", "settings of Knative's config-autoscaler, as key=value,… (stable-window=6s,panic-threshold-percentage=200)")
	rabbitPrefix := fs.String("rabbitmq-prefix", "", "put before every RabbitMQ queue and exchange name (to share a server)")
	fresh := fs.Bool("fresh", false, "start from empty data: remove the state folder's data (embedded Kafka, Redis, Valkey) and delete the queues of rabbit-source/ with what they hold")
	kafkaStorage := fs.String("kafka-storage", string(infra.KafkaDisk), "how the embedded Kafka keeps records and offsets: disk (written before the 202, survives a crash of clima dev), fsync (also survives a power loss; slower) or memory (lost on stop)")
	verbose := fs.Bool("v", false, "log at debug level")
	metrics := fs.Bool("metrics", true, "export metrics from every function and clima dev, scraped by a Prometheus it starts (false: no metrics, to measure their cost)")
	debug := fs.Bool("debug", false, "serve Go's profiles of the runtime (/debug/pprof/ at the ingress) and of every function (URLs in /status)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	storage, err := infra.ParseKafkaStorage(*kafkaStorage)
	if err != nil {
		return fmt.Errorf("-kafka-storage: %w", err)
	}
	asSettings, err := keyValues(*autoscalerSettings)
	if err != nil {
		return fmt.Errorf("-autoscaler: %w", err)
	}
	annotations := map[string]map[string]string{}
	pairs, err := keyValues(*annotate)
	if err != nil {
		return err
	}
	for k, v := range pairs {
		service, key, ok := strings.Cut(k, ":")
		if !ok {
			return fmt.Errorf("-annotate: %q is not service:key=value", k+"="+v)
		}
		if annotations[service] == nil {
			annotations[service] = map[string]string{}
		}
		annotations[service][key] = v
	}
	rootDir, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(rootDir, "knative")); err != nil {
		return fmt.Errorf("%s has no knative/ folder: run clima dev in the clima repository, or pass -root", rootDir)
	}
	stateDir, err := filepath.Abs(*state)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return local.Run(ctx, local.Options{
		Root:          rootDir,
		StateDir:      stateDir,
		BrokerAddr:    *addr,
		DashboardAddr: *dashboardAddr,
		Idle:          *idle,
		Autoscaler:    asSettings,
		Annotations:   annotations,
		KafkaBrokers:  os.Getenv("KAFKA_BROKERS"),
		RabbitURL:     os.Getenv("RABBITMQ_URL"),
		RedisURL:      os.Getenv("REDIS_URL"),
		ValkeyURL:     os.Getenv("VALKEY_URL"),
		RabbitPrefix:  *rabbitPrefix,
		KafkaStorage:  storage,
		Fresh:         *fresh,
		Debug:         *debug,
		NoMetrics:     !*metrics,
		Log:           log,
	})
}

// keyValues reads "k=v,k2=v2".
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}
