package infra

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/rabbit"
)

// RabbitMQ is the RabbitMQ server: the one at RABBITMQ_URL or on
// 127.0.0.1:5672, started when it is installed and not running.
type RabbitMQ struct {
	url     string
	started bool // by this runtime, so it stops it too
}

// StartRabbitMQ uses the RabbitMQ at rawURL (127.0.0.1:5672 when empty),
// starting the installed server when nothing answers there.
func StartRabbitMQ(ctx context.Context, rawURL string, log *slog.Logger) (*RabbitMQ, error) {
	r := &RabbitMQ{url: rawURL}
	if r.url == "" {
		r.url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if dialRabbit(r.url) == nil {
		return r, nil
	}
	server, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/rabbitmq-server"); statErr != nil {
			return nil, fmt.Errorf("RabbitMQ at %s does not answer and rabbitmq-server is not installed: run `make deps` or set RABBITMQ_URL", Redact(r.url))
		}
		server = "/usr/sbin/rabbitmq-server"
	}
	log.Info("starting RabbitMQ", "server", server)
	start := exec.CommandContext(ctx, server, "-detached")
	start.Env = append(os.Environ(), rabbitLoopbackEnv...)
	if out, err := start.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("starting RabbitMQ: %v: %s", err, out)
	}
	r.started = true
	deadline := time.Now().Add(rabbitStartTimeout)
	for {
		err := dialRabbit(r.url)
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("RabbitMQ did not answer within %s: %w", rabbitStartTimeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// rabbitStartTimeout bounds the wait for a RabbitMQ started here to answer:
// its first start on a machine sets up its data folder.
const rabbitStartTimeout = 90 * time.Second

// rabbitLoopbackEnv makes a RabbitMQ the project starts listen on loopback
// only: AMQP, the Erlang distribution port and epmd (scripts/deps.sh sets
// the same; TestRabbitStartsOnLoopback holds the two equal).
var rabbitLoopbackEnv = []string{
	"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
	"ERL_EPMD_ADDRESS=127.0.0.1",
	"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
}

func dialRabbit(rawURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, rawURL, "clima dev: is RabbitMQ up?")
	if err != nil {
		return err
	}
	return conn.Close()
}

// URL is the server's AMQP URL, credentials included.
func (r *RabbitMQ) URL() string { return r.url }

// Close stops the server if StartRabbitMQ started it.
func (r *RabbitMQ) Close(log *slog.Logger) {
	if !r.started {
		return
	}
	ctl := "rabbitmqctl"
	if _, err := exec.LookPath(ctl); err != nil {
		ctl = "/usr/sbin/rabbitmqctl"
	}
	if out, err := exec.Command(ctl, "stop").CombinedOutput(); err != nil {
		log.Error("stopping RabbitMQ", "error", err, "output", string(out))
		return
	}
	log.Info("stopped RabbitMQ")
}

// DeclareTopology declares the queues, exchanges and bindings of
// rabbit-source/, as the Messaging Topology Operator does, with prefix
// before every name (so that runtimes sharing a server do not mix). It
// answers how many messages each queue already holds, ready for delivery.
func DeclareTopology(rawURL, prefix string, set *manifest.Set) (map[string]int, error) {
	conn, err := rabbit.Dial(context.Background(), rawURL, "clima dev topology")
	if err != nil {
		return nil, fmt.Errorf("connecting to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	for _, e := range set.Exchanges {
		if err := ch.ExchangeDeclare(prefix+e.Spec.Name, e.Spec.Type, e.Spec.Durable, false, false, false, nil); err != nil {
			return nil, fmt.Errorf("declaring exchange %s: %w", e.Spec.Name, err)
		}
	}
	ready := map[string]int{}
	for _, q := range set.Queues {
		args := amqp.Table{}
		for k, v := range q.Spec.Arguments {
			if s, ok := v.(string); ok && (k == "x-dead-letter-exchange" || k == "x-dead-letter-routing-key") {
				v = prefix + s
			}
			args[k] = v
		}
		if q.Spec.Type != "" {
			args["x-queue-type"] = q.Spec.Type
		}
		queue, err := ch.QueueDeclare(prefix+q.Spec.Name, q.Spec.Durable, false, false, false, args)
		if err != nil {
			return nil, fmt.Errorf("declaring queue %s (delete it if it was declared with other arguments, or start with -fresh): %w", prefix+q.Spec.Name, err)
		}
		ready[queue.Name] = queue.Messages
	}
	for _, b := range set.Bindings {
		if err := ch.QueueBind(prefix+b.Spec.Destination, prefix+b.Spec.RoutingKey, prefix+b.Spec.Source, false, nil); err != nil {
			return nil, fmt.Errorf("binding %s: %w", b.Metadata.Name, err)
		}
	}
	return ready, nil
}

// DeleteTopology deletes what DeclareTopology declares, with what the
// queues hold (-fresh).
func DeleteTopology(rawURL, prefix string, set *manifest.Set) error {
	conn, err := rabbit.Dial(context.Background(), rawURL, "clima dev topology")
	if err != nil {
		return fmt.Errorf("connecting to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, q := range set.Queues {
		if _, err := ch.QueueDelete(prefix+q.Spec.Name, false, false, false); err != nil {
			return fmt.Errorf("deleting queue %s: %w", prefix+q.Spec.Name, err)
		}
	}
	for _, e := range set.Exchanges {
		if err := ch.ExchangeDelete(prefix+e.Spec.Name, false, false); err != nil {
			return fmt.Errorf("deleting exchange %s: %w", prefix+e.Spec.Name, err)
		}
	}
	return nil
}
