package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/rabbit"
)

// rabbitLockFile serialises, across the test binaries that go test runs at
// once, the tests that stop RabbitMQ with those that use it.
var rabbitLockFile = filepath.Join(os.TempDir(), "clima-tests-rabbitmq.lock")

// exclusive is set while this test binary holds RabbitMQ alone.
var exclusive atomic.Bool

func lockRabbit(t testing.TB, how int) {
	t.Helper()
	f, err := os.OpenFile(rabbitLockFile, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("opening %s: %v", rabbitLockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		t.Fatalf("locking %s: %v", rabbitLockFile, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	})
}

// RabbitExclusive waits until no other test uses RabbitMQ and keeps it for
// this test alone, which may then stop and start the server.
func RabbitExclusive(t testing.TB) string {
	t.Helper()
	lockRabbit(t, syscall.LOCK_EX)
	exclusive.Store(true)
	t.Cleanup(func() { exclusive.Store(false) })
	return RabbitURL(t)
}

// RestartRabbit stops the RabbitMQ application, waits down for the given
// time, and starts it again; it needs RabbitExclusive.
func RestartRabbit(t testing.TB, down time.Duration) {
	t.Helper()
	if !exclusive.Load() {
		t.Fatal("RestartRabbit needs RabbitExclusive first")
	}
	ctl := "rabbitmqctl"
	if _, err := exec.LookPath(ctl); err != nil {
		ctl = "/usr/sbin/rabbitmqctl"
	}
	if out, err := exec.Command(ctl, "stop_app").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl stop_app: %v: %s", err, out)
	}
	time.Sleep(down) // the outage itself
	if out, err := exec.Command(ctl, "start_app").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl start_app: %v: %s", err, out)
	}
}

// RabbitURL returns the URL of the RabbitMQ server the tests use
// (RABBITMQ_URL, or the local default) after checking that it answers. It
// holds a shared lock, so that no test stops RabbitMQ under this one.
func RabbitURL(t testing.TB) string {
	t.Helper()
	if !exclusive.Load() {
		lockRabbit(t, syscall.LOCK_SH)
	}
	url := os.Getenv("RABBITMQ_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := rabbit.Dial(context.Background(), url, "clima test")
	if err != nil {
		t.Fatalf("RabbitMQ at %s does not answer (%v): run `make test`, which installs and starts it, or `rabbitmq-server -detached`", url, err)
	}
	_ = conn.Close()
	return url
}

// RabbitChannel opens a channel on the test server, closed when the test ends.
func RabbitChannel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	conn, err := rabbit.Dial(context.Background(), url, "clima test")
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

// DeleteQueues deletes the queues and exchanges of the manifests in root
// that a runtime declared under prefix: they outlive the runtime, as a
// cluster's outlive its pods.
func DeleteQueues(t testing.TB, url, root, prefix string) {
	t.Helper()
	set, err := manifest.Load(root, manifest.Dirs...)
	if err != nil {
		t.Fatal(err)
	}
	// Its own connection: this runs in cleanups, after RabbitChannel's.
	conn, err := rabbit.Dial(context.Background(), url, "clima test cleanup")
	if err != nil {
		t.Fatalf("dialing RabbitMQ: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range set.Queues {
		if _, err := ch.QueueDelete(prefix+q.Spec.Name, false, false, false); err != nil {
			t.Errorf("deleting queue %s: %v", prefix+q.Spec.Name, err)
		}
	}
	for _, e := range set.Exchanges {
		if err := ch.ExchangeDelete(prefix+e.Spec.Name, false, false); err != nil {
			t.Errorf("deleting exchange %s: %v", prefix+e.Spec.Name, err)
		}
	}
}
