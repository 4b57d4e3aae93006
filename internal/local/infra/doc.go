// Package infra runs, or finds, the servers clima dev's platform stands on,
// as a cluster's operators run them: the embedded Kafka (kfake, persisted
// under the state folder) unless KAFKA_BROKERS names one, RabbitMQ with the
// queue topology of rabbit-source/, and the Redis and Valkey servers with
// the users their StatefulSets define.
package infra
