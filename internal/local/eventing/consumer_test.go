package eventing

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/local/infra"
)

// TestConsumerGroupCommitsTheHandledPrefix: while one record is in
// flight, the offset stops before it however many after it are done, so a
// crash would redeliver it; once it is done, the group has read everything.
func TestConsumerGroupCommitsTheHandledPrefix(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const topic, group = "records", "handlers"
	k, err := infra.StartKafka(ctx, infra.KafkaConfig{Storage: infra.KafkaMemory, MaxMessageBytes: events.MaxEventBytes}, []infra.Topic{{Name: topic, Partitions: 1}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers()...), Topic: topic, RequiredAcks: kafka.RequireAll}
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	held := make(chan struct{})
	var mu sync.Mutex
	handled := map[string]bool{}
	loop := newKafkaLoop(k.Brokers(), group, []string{topic}, 8, quiet, func(_ context.Context, m kafka.Message) bool {
		if string(m.Value) == "2" {
			<-held
		}
		mu.Lock()
		handled[string(m.Value)] = true
		mu.Unlock()
		return true
	})
	done := make(chan struct{})
	go func() { loop.run(ctx); close(done) }()

	await := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10 s for %s", what)
			}
		}
	}
	await("records 0, 1, 3 and 4 handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 4
	})
	// Records 3 and 4 are done, so an offset past 2 would leave fewer
	// than 3 pending, and this would never hold.
	await("offset 2 committed, and no further", func() bool { return k.Pending(topic, group) == 3 })
	// A commit past 2 could still be on its way: it would land within a
	// commit interval (50 ms); four later the offset must not have moved.
	time.Sleep(200 * time.Millisecond)
	if got := k.Pending(topic, group); got != 3 {
		t.Fatalf("%d records pending while record 2 is in flight, want 3 (2, 3 and 4)", got)
	}
	close(held)
	await("every record committed", func() bool { return k.Pending(topic, group) == 0 })
	cancel()
	<-done
}
