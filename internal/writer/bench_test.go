package writer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// BenchmarkPublish is one writer's batch: reports published and durably
// taken (Kafka acks=all to the embedded Kafka; RabbitMQ confirms from the
// RabbitMQ server, a quorum queue).
func BenchmarkPublish(b *testing.B) {
	cluster := testenv.StartKafka(b, "bench-topic", 2, nil)
	rabbitURL := testenv.RabbitURL(b)
	queue := testenv.DeclareQueue(b, testenv.RabbitChannel(b, rabbitURL))
	writers := map[string]writer.Writer{
		"kafka":    writer.NewKafka(writer.KafkaConfig{Brokers: cluster.ListenAddrs(), Topic: "bench-topic"}),
		"rabbitmq": writer.NewRabbit(writer.RabbitConfig{URL: rabbitURL, RoutingKey: queue, Queue: queue}),
	}
	for _, name := range []string{"kafka", "rabbitmq"} {
		w := writers[name]
		b.Cleanup(func() { _ = w.Close() })
		for _, batch := range []int{1, 100, 1000} {
			reports := testenv.Reports("bench", batch)
			b.Run(fmt.Sprintf("%s/batch=%d", name, batch), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := w.Publish(ctx, reports)
					cancel()
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/report")
			})
		}
	}
}
