package infra

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

var quiet = slog.New(slog.DiscardHandler)

// TestKafkaReloadsRecordsAndOffsets: what the embedded Kafka acknowledged,
// and what each group committed, is there again after a restart, with the
// topic configs and the retention bound.
func TestKafkaReloadsRecordsAndOffsets(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "kafka")
	topics := []Topic{{Name: "reports", Partitions: 2, Configs: map[string]string{"retention.ms": "604800000"}}}
	k, err := StartKafka(ctx, KafkaConfig{Storage: KafkaDisk, Dir: dir}, topics, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if k.recovered {
		t.Fatal("an empty folder was reported as recovered")
	}
	w := &kafka.Writer{Addr: kafka.TCP(k.brokers...), Topic: "reports", RequiredAcks: kafka.RequireAll, Balancer: &kafka.Murmur2Balancer{}}
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v")})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.brokers, GroupID: "readers", GroupTopics: []string{"reports"}, StartOffset: kafka.FirstOffset})
	for range 4 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	_ = r.Close()
	if got := k.Pending("reports", "readers"); got != 6 {
		t.Fatalf("%d pending before the restart, want 6", got)
	}
	k.Close()

	k, err = StartKafka(ctx, KafkaConfig{Storage: KafkaDisk, Dir: dir}, topics, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if !k.recovered {
		t.Fatal("the reloaded folder was not reported as recovered")
	}
	if got := k.Pending("reports", "readers"); got != 6 {
		t.Errorf("%d pending after the restart, want 6", got)
	}
	if got := k.Pending("reports", "a-group-that-never-read"); got != 10 {
		t.Errorf("%d pending for a new group, want all 10", got)
	}
	client := &kafka.Client{Addr: kafka.TCP(k.brokers...), Timeout: 10 * time.Second}
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "reports", ConfigNames: []string{"retention.ms", "retention.bytes"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range resp.Resources[0].ConfigEntries {
		got[e.ConfigName] = e.ConfigValue
	}
	if got["retention.ms"] != "604800000" || got["retention.bytes"] != strconv.Itoa(kafkaRetentionBytes) {
		t.Errorf("topic configs %v, want the manifest's retention.ms and retention.bytes %d", got, kafkaRetentionBytes)
	}
}

// TestKafkaDataUnreadable: a data folder this kfake cannot read (written
// by a newer format) stops the start with an error that says what to do.
func TestKafkaDataUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(`{"version": 99, "cluster_id": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := StartKafka(context.Background(), KafkaConfig{Storage: KafkaDisk, Dir: dir}, nil, quiet)
	if err == nil {
		t.Fatal("started on an unreadable data folder")
	}
	for _, want := range []string{dir, "version 99", "clima dev -fresh", "make run ARGS=-fresh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
