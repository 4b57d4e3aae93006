package infra

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/testenv"
)

// TestRabbitTopology declares the manifests' queues, exchanges and
// bindings on the RabbitMQ server, under a prefix, and deletes them again.
func TestRabbitTopology(t *testing.T) {
	url := testenv.RabbitURL(t)
	set := testenv.Manifests(t)
	prefix := "topology-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	ready, err := DeclareTopology(url, prefix, set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTopology(url, prefix, set) })
	if len(ready) != len(set.Queues) || len(ready) == 0 {
		t.Fatalf("declared %v, want the %d queues of the manifests", ready, len(set.Queues))
	}
	ch := testenv.RabbitChannel(t, url)
	for _, q := range set.Queues {
		if n, ok := ready[prefix+q.Spec.Name]; !ok || n != 0 {
			t.Errorf("queue %s: declared %v with %d messages, want a new empty queue", prefix+q.Spec.Name, ok, n)
		}
		if _, err := ch.QueueDeclarePassive(prefix+q.Spec.Name, q.Spec.Durable, false, false, false, nil); err != nil {
			t.Fatalf("queue %s is not there: %v", prefix+q.Spec.Name, err)
		}
	}
	if err := DeleteTopology(url, prefix, set); err != nil {
		t.Fatal(err)
	}
	ch = testenv.RabbitChannel(t, url)
	if _, err := ch.QueueDeclarePassive(prefix+set.Queues[0].Spec.Name, true, false, false, false, nil); err == nil {
		t.Fatal("a queue is still there after DeleteTopology")
	}
}

// TestRabbitStartsOnLoopback: scripts/deps.sh starts RabbitMQ with the same
// loopback settings as clima dev does.
func TestRabbitStartsOnLoopback(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "scripts", "deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range rabbitLoopbackEnv {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.Contains(string(script), name+"="+value) && !strings.Contains(string(script), name+`="`+value+`"`) {
			t.Errorf("scripts/deps.sh does not start RabbitMQ with %s", kv)
		}
	}
}
