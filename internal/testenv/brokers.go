package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/events/writerpb"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/writer"
)

// Message is one broker message as a consumer sees it: a country group.
type Message struct {
	Key         string // Kafka record key
	MessageID   string // AMQP message-id
	ContentType string
	Persistent  bool
	// ReportCount is the AMQP header writer.ReportCountHeader (-1 when absent).
	ReportCount int
	// Partition is the Kafka partition the record is in.
	Partition int
	Size      int // of the body, in bytes
	Reports   []events.Report
}

// ReportsOf lists the reports of messages, in message order.
func ReportsOf(messages []Message) []events.Report {
	var all []events.Report
	for _, m := range messages {
		all = append(all, m.Reports...)
	}
	return all
}

// KafkaMessages reads every record of the topic's partitions.
func KafkaMessages(t testing.TB, broker, topic string, partitions int) []Message {
	t.Helper()
	var all []Message
	for p := range partitions {
		all = append(all, partitionMessages(t, broker, topic, p)...)
	}
	return all
}

func partitionMessages(t testing.TB, broker, topic string, partition int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		t.Fatalf("dialing partition %d: %v", partition, err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatalf("reading last offset of partition %d: %v", partition, err)
	}
	var out []Message
	for offset := int64(0); offset < last; {
		if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		batch := conn.ReadBatch(1, 50<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			offset = m.Offset + 1
			msg := Message{Key: string(m.Key), Persistent: true, ReportCount: -1, Partition: partition, Size: len(m.Value)}
			for _, h := range m.Headers {
				if h.Key == "content-type" {
					msg.ContentType = string(h.Value)
				}
			}
			if err := json.Unmarshal(m.Value, &msg.Reports); err != nil {
				t.Fatalf("record %d/%d is not an array of reports: %v", partition, m.Offset, err)
			}
			out = append(out, msg)
		}
		_ = batch.Close()
	}
	return out
}

// DeclareQueue declares a durable quorum queue of its own for one test,
// deleted when the test ends.
func DeclareQueue(t testing.TB, ch *amqp.Channel) string {
	t.Helper()
	queue := fmt.Sprintf("clima-test-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("declaring queue: %v", err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	return queue
}

// QueueMessages consumes the queue's messages until they hold at least
// wantReports reports, then every message left in it.
func QueueMessages(t testing.TB, ch *amqp.Channel, queue string, wantReports int) []Message {
	t.Helper()
	tag := "testenv-" + queue
	deliveries, err := ch.Consume(queue, tag, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consuming %s: %v", queue, err)
	}
	var out []Message
	decode := func(d amqp.Delivery) {
		msg := Message{MessageID: d.MessageId, ContentType: d.ContentType, Persistent: d.DeliveryMode == amqp.Persistent, ReportCount: -1, Size: len(d.Body)}
		if n, ok := d.Headers[writer.ReportCountHeader].(int32); ok {
			msg.ReportCount = int(n)
		}
		if err := json.Unmarshal(d.Body, &msg.Reports); err != nil {
			t.Fatalf("message %s is not an array of reports: %v", d.MessageId, err)
		}
		out = append(out, msg)
	}
	deadline := time.After(20 * time.Second)
	for len(ReportsOf(out)) < wantReports {
		select {
		case d := <-deliveries:
			decode(d)
		case <-deadline:
			t.Fatalf("queue %s: %d messages holding %d reports after 20s, want %d reports", queue, len(out), len(ReportsOf(out)), wantReports)
		}
	}
	if err := ch.Cancel(tag, false); err != nil {
		t.Fatal(err)
	}
	for d := range deliveries { // those already on their way
		decode(d)
	}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		decode(d)
	}
}

// ServeWriter serves w as the gRPC Writer service on a free port until the
// test ends, and returns its address.
func ServeWriter(t testing.TB, w writer.Writer, timeout time.Duration) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(events.MaxMessageBytes))
	writerpb.RegisterWriterServer(srv, writer.NewServer(w, "test", timeout, fnruntime.NewLogger("test-writer")))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		_ = w.Close()
	})
	return lis.Addr().String()
}
