package manifest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/manifest/owner"
)

// TestKafkaTakesTheEventsClimaTakes holds the one event-size bound across
// the local Broker, Strimzi's Kafka and the Knative Kafka broker's producer,
// whose release default (max.request.size=1048576) would refuse a
// 10,000-report event.
func TestKafkaTakesTheEventsClimaTakes(t *testing.T) {
	root := repoRoot(t)
	script := filepath.Join(root, "scripts", "kafka-broker-limits.sh")
	out, err := exec.Command(script, "--size").Output()
	if err != nil {
		t.Fatalf("%s --size: %v", script, err)
	}
	size, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || size != local.MaxEventBytes {
		t.Fatalf("the script's bound is %q, want the local Broker's %d", out, local.MaxEventBytes)
	}

	t.Run("Strimzi's Kafka takes records of that size", func(t *testing.T) {
		docs, err := owner.Documents(filepath.Join(root, "kafka-source", "kafka.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, doc := range docs {
			var k struct {
				Kind string
				Spec struct {
					Kafka struct{ Config map[string]any }
				}
			}
			if err := yaml.Unmarshal(doc, &k); err != nil || k.Kind != "Kafka" {
				continue
			}
			found = true
			for _, key := range []string{"message.max.bytes", "replica.fetch.max.bytes"} {
				if got, _ := k.Spec.Kafka.Config[key].(float64); int(got) != size {
					t.Errorf("Kafka spec.kafka.config %s = %v, want %d", key, k.Spec.Kafka.Config[key], size)
				}
			}
		}
		if !found {
			t.Fatal("kafka-source/kafka.yaml holds no Kafka")
		}
	})

	t.Run("the patch sets max.request.size once and keeps the other properties", func(t *testing.T) {
		release := "acks=1\nmax.request.size=1048576\nsasl.jaas.config=x required user=\"a\\b\";\n# a comment\nlinger.ms=0\n"
		cmd := exec.Command(script, "--patch")
		cmd.Stdin = strings.NewReader(release)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s --patch: %v", script, err)
		}
		var patch struct{ Data map[string]string }
		if err := json.Unmarshal(out, &patch); err != nil {
			t.Fatalf("the patch is not JSON: %v\n%s", err, out)
		}
		want := "acks=1\nsasl.jaas.config=x required user=\"a\\b\";\n# a comment\nlinger.ms=0\nmax.request.size=" + strconv.Itoa(size) + "\n"
		if got := patch.Data["config-kafka-broker-producer.properties"]; got != want || len(patch.Data) != 1 {
			t.Fatalf("patch data %q, want only config-kafka-broker-producer.properties = %q", patch.Data, want)
		}
	})

	t.Run("make cluster-deps runs it", func(t *testing.T) {
		makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
		if err != nil {
			t.Fatal(err)
		}
		target := regexp.MustCompile(`(?ms)^cluster-deps:.*?\n\n`).Find(makefile)
		if !strings.Contains(string(target), "scripts/kafka-broker-limits.sh") {
			t.Fatalf("make cluster-deps does not run scripts/kafka-broker-limits.sh:\n%s", target)
		}
	})
}
