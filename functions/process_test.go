// Package functions_test starts every function as the process Knative would
// run, and checks what the platform relies on: readiness soon after start,
// and a drain of in-flight work on SIGTERM before a clean exit.
package functions_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/local/serving"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// binDir holds the function binaries, built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clima-functions-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "./...")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the functions:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// process is one function running as its own process.
// rss is the process's resident memory, as /proc says.
func (p *process) rss() string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	started time.Time
	logs    *testenv.Buffer
	exited  chan error
}

func start(t *testing.T, name string, env map[string]string) *process {
	t.Helper()
	port := testenv.FreePort(t)
	p := &process{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), logs: &testenv.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(binDir, name))
	p.cmd.Env = []string{"PORT=" + strconv.Itoa(port), "K_SERVICE=" + name, "K_REVISION=" + name + "-00001", "K_CONFIGURATION=" + name}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stderr = p.logs
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})
	return p
}

// waitReady polls readiness and returns how long after start it came.
func (p *process) waitReady(t *testing.T, grpcHealth bool) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := serving.Probe(ctx, p.addr, grpcHealth)
		cancel()
		if err == nil {
			return time.Since(p.started)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 10s: %v", p.name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// terminate sends SIGTERM and waits until the function says it is draining.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(p.logs.String(), `"msg":"draining in-flight`) {
			return fmt.Errorf("no drain in the logs")
		}
		return nil
	}, "%s to start draining after SIGTERM", p.name)
}

func (p *process) waitExit(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still running 15s after SIGTERM", p.name)
	}
}

// slowRequest is an HTTP request whose body is held back until its handler
// runs: it asks for 100 Continue, which the server sends once the handler
// reads the body, so the request is in flight when the test goes on.
type slowRequest struct {
	conn   net.Conn
	answer *bufio.Reader
	body   []byte
}

func beginRequest(t *testing.T, addr string, e testenv.Event) *slowRequest {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", addr, e.ContentType, len(e.Data))
	fmt.Fprintf(conn, "Ce-Specversion: 1.0\r\nCe-Id: %s\r\nCe-Source: %s\r\nCe-Type: %s\r\n\r\n", e.ID, e.Source, e.Type)
	r := &slowRequest{conn: conn, answer: bufio.NewReader(conn), body: e.Data}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.answer.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue once the handler reads, got %q (%v)", line, err)
	}
	if blank, err := r.answer.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("100 Continue not followed by a blank line: %q (%v)", blank, err)
	}
	return r
}

// finish sends the body and returns the answer's status.
func (r *slowRequest) finish() (int, error) {
	defer r.conn.Close()
	if _, err := r.conn.Write(r.body); err != nil {
		return 0, err
	}
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r.answer, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// infra is what the functions talk to: real servers.
type infra struct {
	redis      *testenv.Redis
	kafkaGate  *testenv.Gate
	kafka      []string
	produced   chan struct{}
	rabbitURL  string
	rabbitGate *testenv.Gate
	queue      string
	queueDepth func() int
}

func startInfra(t *testing.T) *infra {
	t.Helper()
	in := &infra{redis: testenv.StartRedis(t), kafkaGate: &testenv.Gate{}, produced: make(chan struct{}, 100)}
	cluster := testenv.StartKafka(t, "clima-topic", 2, in.kafkaGate)
	cluster.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case in.produced <- struct{}{}:
		default:
		}
		return nil, nil, false
	})
	in.kafka = cluster.ListenAddrs()
	url := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, url)
	in.queue = testenv.DeclareQueue(t, ch)
	var proxy *testenv.Proxy
	in.rabbitURL, proxy = testenv.ProxyURL(t, url)
	in.rabbitGate = &proxy.Gate
	in.queueDepth = func() int {
		q, err := ch.QueueDeclarePassive(in.queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}
	return in
}

// storeEnv is a function's store settings, as the user of its role.
func (in *infra) storeEnv(role store.Role) func() map[string]string {
	return func() map[string]string {
		url, password := in.redis.As(role)
		return map[string]string{"STORE_URL": url, "STORE_PASSWORD": password}
	}
}

func reportEvent(t *testing.T, eventType string, data any) testenv.Event {
	t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Event{ID: "drain-" + eventType, Source: "test/drain", Type: eventType, ContentType: "application/json", Data: body}
}

// TestFunctionProcesses starts each function as a process: it must answer
// readiness within 1s of its start, and on SIGTERM finish the request it has
// in flight before it exits 0.
func TestFunctionProcesses(t *testing.T) {
	in := startInfra(t)
	report := testenv.Reports("drain", 1)
	kafkaWriterEnv := map[string]string{"KAFKA_BROKERS": strings.Join(in.kafka, ","), "KAFKA_TOPIC": "clima-topic", "PUBLISH_TIMEOUT": "20s"}
	u := strings.SplitN(strings.TrimPrefix(in.rabbitURL, "amqp://"), "@", 2)
	rabbitWriterEnv := map[string]string{"RABBITMQ_URL": "amqp://" + u[1], "RABBITMQ_USERNAME": "guest", "RABBITMQ_PASSWORD": "guest",
		"RABBITMQ_QUEUE": in.queue, "PUBLISH_TIMEOUT": "20s"}

	httpCases := []struct {
		name  string
		env   func() map[string]string
		event testenv.Event
	}{
		{"ingest", func() map[string]string {
			return map[string]string{"K_SINK": "http://127.0.0.1:1", "SINK_TIMEOUT": "30s"}
		},
			reportEvent(t, events.TypeReported, map[string]string{"description": "x", "country": "GT", "weather": "sol"})},
		{"kafka-consumer", in.storeEnv(store.RoleConsumer), reportEvent(t, "dev.knative.kafka.event", report[0])},
		{"rabbit-consumer", in.storeEnv(store.RoleConsumer), reportEvent(t, "dev.knative.rabbitmq.event", report[0])},
		{"dead-letter", in.storeEnv(store.RoleDeadLetter), reportEvent(t, "clima.weather.reported", map[string]string{"broken": "yes"})},
		{"publisher", func() map[string]string {
			return map[string]string{
				"KAFKA_WRITER_ADDR":  testenv.ServeWriter(t, writer.NewKafka(writer.KafkaConfig{Brokers: in.kafka, Topic: "clima-topic"}), 5*time.Second),
				"RABBIT_WRITER_ADDR": testenv.ServeWriter(t, writer.NewRabbit(writer.RabbitConfig{URL: in.rabbitURL, RoutingKey: in.queue, Queue: in.queue}), 5*time.Second),
				"WRITERS_TIMEOUT":    "15s",
			}
		}, reportEvent(t, events.TypeValidated, report)},
	}
	for _, c := range httpCases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, c.name, c.env())
			if took := p.waitReady(t, false); took > time.Second {
				t.Errorf("ready %s after start, want within 1s", took)
			} else {
				t.Logf("ready %s after start; resident memory when ready %s", took.Round(time.Millisecond), p.rss())
			}
			req := beginRequest(t, p.addr, c.event)
			p.terminate(t)
			if status, err := req.finish(); err != nil || status != http.StatusOK {
				t.Fatalf("in-flight request answered %d (%v) during the drain, want 200", status, err)
			}
			p.waitExit(t)
		})
	}

	grpcCases := []struct {
		name    string
		env     map[string]string
		gate    *testenv.Gate
		arrival func() func() error // returns a check that one more report reached the broker
	}{
		{"kafka-writer", kafkaWriterEnv, in.kafkaGate, func() func() error {
			for len(in.produced) > 0 {
				<-in.produced
			}
			return func() error {
				select {
				case <-in.produced:
					return nil
				default:
					return fmt.Errorf("no produce request yet")
				}
			}
		}},
		{"rabbit-writer", rabbitWriterEnv, in.rabbitGate, func() func() error {
			before := in.queueDepth()
			return func() error {
				if n := in.queueDepth(); n == before {
					return fmt.Errorf("queue still holds %d", n)
				}
				return nil
			}
		}},
	}
	for _, c := range grpcCases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, c.name, c.env)
			if took := p.waitReady(t, true); took > time.Second {
				t.Errorf("ready %s after start, want within 1s", took)
			} else {
				t.Logf("ready %s after start; resident memory when ready %s", took.Round(time.Millisecond), p.rss())
			}
			client, err := writer.Dial(p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			// A first publish warms the writer's connection and metadata.
			if err := client.Publish(context.Background(), testenv.Reports("warm-"+c.name, 1)); err != nil {
				t.Fatal(err)
			}
			arrived := c.arrival()
			c.gate.Hold() // the broker takes the report; its answer waits
			published := make(chan error, 1)
			go func() { published <- client.Publish(context.Background(), testenv.Reports("drain-"+c.name, 1)) }()
			testenv.Eventually(t, 10*time.Second, arrived, "the report to reach the broker")
			p.terminate(t)
			c.gate.Release()
			if err := <-published; err != nil {
				t.Fatalf("in-flight publish failed during the drain: %v", err)
			}
			p.waitExit(t)
		})
	}
}
