package testenv

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKafka runs an in-process Kafka with one topic of the given partitions,
// closed when the test ends. When gate is not nil, it controls the broker's
// connections.
func StartKafka(t testing.TB, topic string, partitions int32, gate *Gate) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}
	if gate != nil {
		opts = append(opts, kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return gate.Listener(l), nil
		}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting embedded Kafka: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
