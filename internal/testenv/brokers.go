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
	"github.com/clima-dev/clima/internal/serving"
	"github.com/clima-dev/clima/internal/writer"
)

// Message is one broker message as a consumer sees it.
type Message struct {
	Key         string // Kafka record key
	MessageID   string // AMQP message-id
	ContentType string
	Persistent  bool
	Report      events.Report
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
			msg := Message{Key: string(m.Key), Persistent: true}
			for _, h := range m.Headers {
				if h.Key == "content-type" {
					msg.ContentType = string(h.Value)
				}
			}
			if err := json.Unmarshal(m.Value, &msg.Report); err != nil {
				t.Fatalf("record %d/%d is not a report: %v", partition, m.Offset, err)
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

// QueueMessages waits until queue holds at least want messages, then
// consumes every message it holds.
func QueueMessages(t testing.TB, ch *amqp.Channel, queue string, want int) []Message {
	t.Helper()
	var depth int
	Eventually(t, 10*time.Second, func() error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if depth = q.Messages; depth < want {
			return fmt.Errorf("%d messages", depth)
		}
		return nil
	}, "queue %s to hold %d messages", queue, want)

	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consuming %s: %v", queue, err)
	}
	out := make([]Message, 0, depth)
	for len(out) < depth {
		select {
		case d := <-deliveries:
			msg := Message{MessageID: d.MessageId, ContentType: d.ContentType, Persistent: d.DeliveryMode == amqp.Persistent}
			if err := json.Unmarshal(d.Body, &msg.Report); err != nil {
				t.Fatalf("message %s is not a report: %v", d.MessageId, err)
			}
			out = append(out, msg)
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d of %d messages", len(out), depth)
		}
	}
	return out
}

// ServeWriter serves w as the gRPC Writer service on a free port until the
// test ends, and returns its address.
func ServeWriter(t testing.TB, w writer.Writer, timeout time.Duration) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(serving.MaxMessageBytes))
	writerpb.RegisterWriterServer(srv, writer.NewServer(w, timeout, serving.NewLogger("test-writer")))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		_ = w.Close()
	})
	return lis.Addr().String()
}
