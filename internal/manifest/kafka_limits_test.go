package manifest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/events"
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
	if err != nil || size != events.MaxEventBytes {
		t.Fatalf("the script's bound is %q, want events.MaxEventBytes, %d", out, events.MaxEventBytes)
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
		if !slices.ContainsFunc(makeCommands(t, "cluster-deps"), func(c string) bool { return strings.HasSuffix(c, " scripts/kafka-broker-limits.sh") }) {
			t.Fatal("make cluster-deps does not run scripts/kafka-broker-limits.sh")
		}
	})

	t.Run("the receiver and the dispatcher roll once the properties change, and only then", func(t *testing.T) {
		// A kubectl that keeps the ConfigMap's producer properties and each
		// workload's pod-template stamp in files and logs every call: what
		// the script does, in order.
		dir := t.TempDir()
		kubectl := filepath.Join(dir, "kubectl")
		state, log := filepath.Join(dir, "properties"), filepath.Join(dir, "calls")
		if err := os.WriteFile(state, []byte("acks=all\nmax.request.size=1048576\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fake := `#!/usr/bin/env bash
echo "$*" >>"` + log + `"
stamp="` + dir + `/stamp-${2//\//-}"
case "$1 $2" in
  "get configmap") cat "` + state + `" ;;
  "patch configmap") python3 -c 'import json, sys; sys.stdout.write(json.loads(sys.argv[1])["data"]["config-kafka-broker-producer.properties"])' "${@: -1}" >"` + state + `" ;;
  "get deployment/"*|"get statefulset/"*) [ -f "$stamp" ] && cat "$stamp" ;;
  "patch deployment/"*|"patch statefulset/"*) python3 -c 'import json, sys; sys.stdout.write(json.loads(sys.argv[1])["spec"]["template"]["metadata"]["annotations"]["clima.dev/producer-properties"])' "${@: -1}" >"$stamp" ;;
esac
exit 0
`
		if err := os.WriteFile(kubectl, []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		run := func() []string {
			t.Helper()
			_ = os.Remove(log)
			cmd := exec.Command(script)
			cmd.Env = append(os.Environ(), "KUBECTL="+kubectl)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", script, err, out)
			}
			calls, _ := os.ReadFile(log)
			var verbs []string
			for _, c := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
				f := strings.Fields(c)
				verbs = append(verbs, strings.Join(f[:min(3, len(f))], " "))
			}
			return verbs
		}
		const receiver, dispatcher = "deployment/kafka-broker-receiver", "statefulset/kafka-broker-dispatcher"
		roll := func(w string) []string {
			return []string{"get " + w + " -n", "patch " + w + " -n", "rollout status " + w}
		}
		// Read (already set?), read for the patch, patch, read back, read for the checksum.
		patched := []string{"get configmap -n", "get configmap -n", "patch configmap -n", "get configmap -n", "get configmap -n"}
		if got, want := run(), slices.Concat(patched, roll(receiver), roll(dispatcher)); !slices.Equal(got, want) {
			t.Fatalf("first run: calls %q, want %q", got, want)
		}
		unchanged := []string{"get configmap -n", "get configmap -n", "get " + receiver + " -n", "get " + dispatcher + " -n"}
		if got := run(); !slices.Equal(got, unchanged) {
			t.Fatalf("run again: calls %q, want only the reads %q", got, unchanged)
		}
		// A run that stopped before the dispatcher rolled: the next one rolls it.
		if err := os.Remove(filepath.Join(dir, "stamp-statefulset-kafka-broker-dispatcher")); err != nil {
			t.Fatal(err)
		}
		if got, want := run(), slices.Concat(unchanged[:3], roll(dispatcher)); !slices.Equal(got, want) {
			t.Fatalf("after a run that stopped half-way: calls %q, want %q", got, want)
		}
	})
}
