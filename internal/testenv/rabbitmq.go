package testenv

import (
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitURL returns the URL of the RabbitMQ server the tests use
// (RABBITMQ_URL, or the local default) after checking that it answers.
func RabbitURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("RABBITMQ_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("RabbitMQ at %s does not answer (%v): run `make test`, which installs and starts it, or `rabbitmq-server -detached`", url, err)
	}
	_ = conn.Close()
	return url
}

// RabbitChannel opens a channel on the test server, closed when the test ends.
func RabbitChannel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dialing RabbitMQ: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("opening a RabbitMQ channel: %v", err)
	}
	return ch
}
