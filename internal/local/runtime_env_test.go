package local

import (
	"slices"
	"strings"
	"testing"

	"github.com/clima-dev/clima/internal/testenv"
)

// TestServiceEnv: each Service's environment here is its manifest's with
// every cluster name rewritten to where the same thing listens locally,
// Secrets resolved to the local servers' credentials, RabbitMQ names
// prefixed, Knative's own variables, and loopback as the address to listen on.
func TestServiceEnv(t *testing.T) {
	set := testenv.Manifests(t)
	local := here{
		services: map[string]string{}, stores: map[string]string{"redis": "127.0.0.1:7001", "valkey": "127.0.0.1:7002"},
		kafka: []string{"127.0.0.1:9001"}, rabbit: "amqp://guest:guest@127.0.0.1:5673/", broker: "http://127.0.0.1:8080",
	}
	for i, s := range set.Services {
		local.services[s.Name] = "http://127.0.0.1:" + []string{"6001", "6002", "6003", "6004", "6005", "6006", "6007"}[i]
	}
	rewrite := clusterRewriter(set, local)
	secrets := localSecrets(set, map[string]string{"clima-redis/consumer-password": "redis-pw", "clima-redis/dead-letter-password": "dead-pw",
		"clima-valkey/consumer-password": "valkey-pw"}, local.rabbit)
	for _, tc := range []struct {
		service, prefix string
		want            []string
	}{
		{"ingest", "", []string{"K_SERVICE=ingest", "K_REVISION=ingest-00001", "LISTEN_HOST=127.0.0.1", "K_SINK=http://127.0.0.1:8080/clima/default", "GOMAXPROCS=1"}},
		{"publisher", "", []string{"KAFKA_WRITER_ADDR=" + strings.TrimPrefix(local.services["kafka-writer"], "http://"),
			"RABBIT_WRITER_ADDR=" + strings.TrimPrefix(local.services["rabbit-writer"], "http://")}},
		{"kafka-writer", "", []string{"KAFKA_BROKERS=127.0.0.1:9001", "KAFKA_TOPIC=clima-topic"}},
		{"rabbit-writer", "", []string{"RABBITMQ_URL=amqp://127.0.0.1:5673/", "RABBITMQ_USERNAME=guest", "RABBITMQ_PASSWORD=guest", "RABBITMQ_QUEUE=clima-queue"}},
		{"rabbit-writer", "t1-", []string{"RABBITMQ_QUEUE=t1-clima-queue", "RABBITMQ_ROUTING_KEY=t1-clima-queue"}},
		{"kafka-consumer", "", []string{"STORE_URL=redis://consumer@127.0.0.1:7001", "STORE_PASSWORD=redis-pw"}},
		{"dead-letter", "", []string{"STORE_URL=redis://dead-letter@127.0.0.1:7001", "STORE_PASSWORD=dead-pw"}},
		{"rabbit-consumer", "", []string{"STORE_URL=redis://consumer@127.0.0.1:7002", "STORE_PASSWORD=valkey-pw"}},
	} {
		t.Run(tc.service+"/"+tc.prefix, func(t *testing.T) {
			env, err := serviceEnv(set.Service(tc.service), set, rewrite, secrets, tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !slices.Contains(env, want) {
					t.Errorf("no %s in %v", want, env)
				}
			}
			for _, kv := range env {
				if strings.Contains(kv, ".svc") {
					t.Errorf("%s still names a cluster host", kv)
				}
			}
		})
	}

	t.Run("a Secret key with no local value is an error", func(t *testing.T) {
		if _, err := serviceEnv(set.Service("kafka-consumer"), set, rewrite, map[string]string{}, ""); err == nil ||
			!strings.Contains(err.Error(), "no local value for Secret key clima-redis/consumer-password") {
			t.Fatalf("error %v, want the missing Secret key named", err)
		}
	})
}
