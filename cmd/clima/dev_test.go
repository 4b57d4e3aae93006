package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/bench"
	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// runAsClima, set in its environment, makes the test binary the clima
// command: the end-to-end tests start clima dev as a process of its own
// without linking a second binary of ~100 MB for each test (7 s each).
const runAsClima = "CLIMA_TEST_RUN_AS_CLIMA"

func TestMain(m *testing.M) {
	if os.Getenv(runAsClima) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// devRun is a `clima dev` process, driven as a user would drive it; it can
// be stopped and started again on the same state folder.
type devRun struct {
	root      string
	state     string
	prefix    string // of its RabbitMQ queues: the server is shared
	cmd       *exec.Cmd
	out       *testenv.Buffer // of the current process
	endpoints local.Endpoints
	redis     *redis.Client
	valkey    *redis.Client
	exited    chan struct{} // closed when the current process exits
	exitErr   error         // how it exited, once exited is closed
}

// idle is the scale-to-zero grace period of the runtime under test.
const idle = 3 * time.Second

// autoscalerSettings shorten Knative's stable window (60 s) to its minimum,
// and widen the panic window to 3 s (10 % of 6 s would be shorter than the
// collector's one scrape a second).
const autoscalerSettings = "stable-window=6s,panic-window-percentage=50"

// devRuns numbers the runtimes of this test process: each gets its own
// RabbitMQ queues.
var devRuns atomic.Int64

func startDev(t *testing.T) *devRun {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	rabbitURL := testenv.RabbitURL(t) // fail early, saying how to get RabbitMQ

	d := &devRun{root: root, state: t.TempDir(), prefix: fmt.Sprintf("e2e-%d-%d-", os.Getpid(), devRuns.Add(1))}
	t.Cleanup(func() { testenv.DeleteQueues(t, rabbitURL, root, d.prefix) })
	t.Cleanup(func() {
		d.stop(t, syscall.SIGINT)
		if t.Failed() {
			t.Logf("clima dev output:\n%s", d.out.String())
		}
	})
	d.launch(t)
	return d
}

// launch starts clima dev on the run's state folder, in a process group of
// its own (as a shell runs it), and waits for its endpoints.
func (d *devRun) launch(t *testing.T, args ...string) {
	t.Helper()
	// The previous process's endpoints must not be read as the new one's.
	if err := os.Remove(filepath.Join(d.state, local.EndpointsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	// Port 0: the runtime takes a free port and writes it to endpoints.json;
	// a port picked here could be taken by a server it starts first.
	args = append([]string{"dev", "-root", d.root, "-state", d.state, "-addr", "127.0.0.1:0", "-dashboard-addr", "127.0.0.1:0",
		"-scale-to-zero-after", idle.String(), "-autoscaler", autoscalerSettings, "-rabbitmq-prefix", d.prefix}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsClima+"=1")
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary that dies takes its runtime with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	d.cmd, d.out, d.exited = cmd, out, exited
	go func() {
		d.exitErr = cmd.Wait()
		close(exited)
	}()
	testenv.Eventually(t, 3*time.Minute, func() error {
		select {
		case <-exited:
			t.Fatalf("clima dev exited (%v):\n%s", d.exitErr, out.String())
		default:
		}
		data, err := os.ReadFile(filepath.Join(d.state, local.EndpointsFile))
		if err != nil {
			return err
		}
		if !strings.Contains(out.String(), "Ctrl-C stops everything") {
			return errors.New("the banner is not printed yet")
		}
		return json.Unmarshal(data, &d.endpoints)
	}, "clima dev to write %s and print its banner", local.EndpointsFile)
	d.redis, d.valkey = client(t, d.endpoints.Redis), client(t, d.endpoints.Valkey)
}

// stop signals the runtime's process group as a terminal or a crash would
// (SIGINT for Ctrl-C, SIGKILL) and waits until it and every process it had
// started are gone.
func (d *devRun) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-d.exited:
		return
	default:
	}
	var pids []int
	if st, err := d.readStatus(); err == nil {
		pids = startedPIDs(st)
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, sig)
	select {
	case <-d.exited:
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		t.Errorf("clima dev still ran 90s after %v", sig)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, pid := range pids {
			if alive(pid) {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	}, "the processes clima dev had started to be gone after %v", sig)
}

func client(t *testing.T, rawURL string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (d *devRun) status(t *testing.T) local.Status {
	t.Helper()
	st, err := d.readStatus()
	if err != nil {
		t.Fatalf("reading status: %v", err)
	}
	return st
}

func (d *devRun) readStatus() (local.Status, error) {
	var st local.Status
	resp, err := http.Get(d.endpoints.Status)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// expected is what the stores must hold.
type expected struct {
	total     int64
	countries map[string]int64
	weathers  map[string]int64
	dead      int64
}

func newExpected() *expected {
	return &expected{countries: map[string]int64{}, weathers: map[string]int64{}}
}

func (e *expected) add(r events.Report) {
	e.total++
	e.countries[r.Country]++
	e.weathers[string(r.Weather)]++
}

// awaitStores waits until both stores hold exactly what is expected and
// nothing is in flight, then checks every count.
func (d *devRun) awaitStores(t *testing.T, want *expected, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, timeout, func() error {
		for name, c := range map[string]*redis.Client{"redis": d.redis, "valkey": d.valkey} {
			st, err := store.ReadStats(ctx, c)
			if err != nil {
				return err
			}
			if st.Total != want.total {
				return fmt.Errorf("%s holds %d reports, want %d", name, st.Total, want.total)
			}
		}
		if st, _ := store.ReadStats(ctx, d.redis); st.DeadLetters != want.dead {
			return fmt.Errorf("%d dead letters, want %d", st.DeadLetters, want.dead)
		}
		for name, ds := range d.status(t).Dispatchers {
			if ds.InFlight != 0 {
				return fmt.Errorf("%s has %d in flight", name, ds.InFlight)
			}
		}
		return nil
	}, "the stores to hold %d reports and %d dead letters", want.total, want.dead)
	for name, c := range map[string]*redis.Client{"redis": d.redis, "valkey": d.valkey} {
		st, err := store.ReadStats(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != want.total || fmt.Sprint(st.Countries) != fmt.Sprint(want.countries) || fmt.Sprint(st.Weathers) != fmt.Sprint(want.weathers) {
			t.Fatalf("%s holds %d reports, per country %v, per weather %v; want %d, %v, %v",
				name, st.Total, st.Countries, st.Weathers, want.total, want.countries, want.weathers)
		}
	}
}

// report is the i-th report a test sends.
func report(i int) map[string]string {
	return map[string]string{
		"description": "reporte " + strconv.Itoa(i),
		"country":     testenv.Countries[i%len(testenv.Countries)],
		"weather":     []string{"lluvia", "Nublado", "sunny"}[i%3],
	}
}

func normalised(i int) events.Report {
	r := report(i)
	w, _ := events.ParseWeather(r["weather"])
	return events.Report{Country: r["country"], Weather: w}
}

// sendEvents posts events to the broker from workers senders; every one
// must be answered 202.
func (d *devRun) sendEvents(t *testing.T, evs []testenv.Event, workers int) {
	t.Helper()
	if err := d.send(evs, workers); err != nil {
		t.Fatal(err)
	}
}

// send is sendEvents for any goroutine: it returns the first failure.
func (d *devRun) send(evs []testenv.Event, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(evs); i += workers {
				resp, err := testenv.SendEvent(d.endpoints.Broker, evs[i])
				if err == nil && resp.Status != http.StatusAccepted {
					err = fmt.Errorf("event %s: %d %s", evs[i].ID, resp.Status, resp.Body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func reportedEvent(t *testing.T, id string, data any) testenv.Event {
	t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Event{ID: id, Source: "test/e2e", Type: events.TypeReported, ContentType: "application/json", Data: body}
}

// TestDev drives `clima dev` end to end: events in at the broker and at the
// public ingest, exact counts out of both stores, a consumer killed, scale
// to zero and back, and Ctrl-C.
func TestDev(t *testing.T) {
	d := startDev(t)
	want := newExpected()
	next := 0 // the next report number

	t.Run("events at the broker land exactly once in both stores", func(t *testing.T) {
		var evs []testenv.Event
		for range 2000 {
			evs = append(evs, reportedEvent(t, "single-"+strconv.Itoa(next), report(next)))
			want.add(normalised(next))
			next++
		}
		for b := range 5 {
			batch := make([]map[string]string, 1000)
			for i := range batch {
				batch[i] = report(next)
				want.add(normalised(next))
				next++
			}
			evs = append(evs, reportedEvent(t, "batch-"+strconv.Itoa(b), batch))
		}
		for i := range 200 { // repeats: same source and id as events already sent
			evs = append(evs, evs[i*7])
		}
		for i := range 100 {
			evs = append(evs, reportedEvent(t, "invalid-"+strconv.Itoa(i), map[string]string{"description": "x", "country": "GT", "weather": "granizo"}))
		}
		want.dead = 100
		start := time.Now()
		d.sendEvents(t, evs, 16)
		d.awaitStores(t, want, 3*time.Minute)
		t.Logf("%d events (%d reports, 200 repeats, 100 invalid) stored in both stores %s after the first send", len(evs), want.total, time.Since(start).Round(time.Millisecond))

		var out bytes.Buffer
		if err := stats(context.Background(), []string{"-state", d.state}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "The two paths agree: 7000 reports in each store") || !strings.Contains(out.String(), "dead letters") {
			t.Fatalf("clima stats says:\n%s", out.String())
		}
	})

	t.Run("Prometheus holds what every function and clima dev counted", func(t *testing.T) {
		checkMetrics(t, d)
		checkLatencyBuckets(t, d)
		checkReplicasPanel(t, d)
	})

	t.Run("a legacy array of 10,000 at /input lands in both stores", func(t *testing.T) {
		batch := make([]map[string]string, 10_000)
		for i := range batch {
			r := report(next)
			batch[i] = map[string]string{"Descripcion": r["description"], "PAIS": r["country"], "clima": r["weather"]}
			want.add(normalised(next))
			next++
		}
		body, _ := json.Marshal(batch)
		resp := testenv.Post(t, d.endpoints.Services["ingest"]+"/input", "application/json", body, nil)
		if resp.Status != http.StatusAccepted || !strings.Contains(string(resp.Body), `"accepted":10000`) {
			t.Fatalf("%d %s, want 202 with 10000 accepted", resp.Status, resp.Body)
		}
		d.awaitStores(t, want, 3*time.Minute)
	})

	t.Run("a consumer killed mid-run loses nothing", func(t *testing.T) {
		var evs []testenv.Event
		for range 3000 {
			evs = append(evs, reportedEvent(t, "kill-"+strconv.Itoa(next), report(next)))
			want.add(normalised(next))
			next++
		}
		before := want.total - 3000
		sent := make(chan error, 1)
		go func() { sent <- d.send(evs, 8) }()
		for _, consumer := range []string{"kafka-consumer", "rabbit-consumer"} {
			store := map[string]*redis.Client{"kafka-consumer": d.redis, "rabbit-consumer": d.valkey}[consumer]
			testenv.Eventually(t, time.Minute, func() error {
				n, _ := store.Get(context.Background(), "total_messages").Int64()
				if pids := d.status(t).Services[consumer].PIDs; n < before+300 || len(pids) == 0 {
					return fmt.Errorf("%d stored, %d processes", n-before, len(pids))
				}
				return nil
			}, "%s to be storing", consumer)
			pid := d.status(t).Services[consumer].PIDs[0]
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed %s (pid %d) with SIGKILL", consumer, pid)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		d.awaitStores(t, want, 3*time.Minute)
	})

	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		checkBadInput(t, d, want)
	})

	t.Run("idle Services scale to zero and start again", func(t *testing.T) {
		var seen []int
		for _, s := range d.status(t).Services {
			seen = append(seen, s.PIDs...)
		}
		testenv.Eventually(t, idle+30*time.Second, func() error {
			for name, s := range d.status(t).Services {
				if len(s.PIDs) > 0 {
					return fmt.Errorf("%s still runs %v", name, s.PIDs)
				}
			}
			return nil
		}, "every Service to scale to zero")
		for _, pid := range seen {
			if alive(pid) {
				t.Errorf("process %d still runs after its Service scaled to zero", pid)
			}
		}
		startsBefore := d.status(t).Services["ingest"].Starts
		d.sendEvents(t, []testenv.Event{reportedEvent(t, "after-zero", report(next))}, 1)
		want.add(normalised(next))
		next++
		d.awaitStores(t, want, time.Minute)
		st := d.status(t).Services["ingest"]
		if st.Starts != startsBefore+1 {
			t.Errorf("ingest started %d times, want %d", st.Starts, startsBefore+1)
		}
		t.Logf("cold start of ingest (process start → ready): %.1f ms", st.ColdStartMs)
		for name, s := range d.status(t).Services {
			t.Logf("cold start of %-15s %6.1f ms", name, s.ColdStartMs)
		}
	})

	// From here on the stores hold reports of random countries: totals are
	// what the harnesses check.
	t.Run("Locust's clients land exactly once in both stores", func(t *testing.T) {
		var out bytes.Buffer
		err := load(context.Background(), []string{"-state", d.state, "-root", d.root, "-users", "10", "-requests", "1000",
			"-user", "CloudEventsUser,LegacyUser", "-batch-weight", "1", "-batch-size", "20"}, &out)
		if err != nil || !strings.Contains(out.String(), "OK: 1000 requests, 0 failures") {
			t.Fatalf("clima load: %v\n%s", err, out.String())
		}
		t.Logf("clima load:\n%s", out.String())
	})

	t.Run("Locust reaches ingest through a gateway that routes by Host, as Kourier's does", func(t *testing.T) {
		d.loadThroughHostGateway(t)
	})

	t.Run("Locust stopped by its run time: the verdict is exact", func(t *testing.T) {
		var out bytes.Buffer
		err := load(context.Background(), []string{"-state", d.state, "-root", d.root, "-users", "30", "-spawn-rate", "30",
			"-requests", "0", "-run-time", "3s"}, &out)
		if err != nil || !regexp.MustCompile(`(?m)^OK: \d+ requests, 0 failures; (\d+) reports accepted, exactly (\d+) in Redis and in Valkey$`).MatchString(out.String()) {
			t.Fatalf("clima load: %v\n%s", err, out.String())
		}
	})

	t.Run("a client that gives up mid-request and retries with its Idempotency-Key stores nothing twice", func(t *testing.T) {
		d.abortThenRetry(t, 2500)
	})

	t.Run("Locust killing requests mid-flight: the verdict explains the difference", func(t *testing.T) {
		var out bytes.Buffer
		err := load(context.Background(), []string{"-state", d.state, "-root", d.root, "-users", "30", "-spawn-rate", "30",
			"-requests", "0", "-run-time", "3s", "-stop-timeout", "0"}, &out)
		verdict := regexp.MustCompile(`OK, exact up to (\d+) requests whose answer Locust never read \((\d+) reports`).FindStringSubmatch(out.String())
		if err != nil || verdict == nil {
			t.Fatalf("clima load: %v\n%s", err, out.String())
		}
		inDoubt, _ := strconv.Atoi(verdict[2])
		if verdict[1] == "0" || inDoubt == 0 {
			t.Fatalf("Locust stopped with no request in flight: the case is not tested\n%s", out.String())
		}
		stores := regexp.MustCompile(`(redis|valkey) holds \d+ reports: the \d+ accepted and (\d+) of the (\d+) in doubt`).FindAllStringSubmatch(out.String(), -1)
		if len(stores) != 2 {
			t.Fatalf("the verdict names %d stores, want Redis and Valkey:\n%s", len(stores), out.String())
		}
		for _, m := range stores {
			if held, _ := strconv.Atoi(m[2]); held < 0 || held > inDoubt || m[3] != verdict[2] {
				t.Errorf("%s: %s of the reports in doubt, bound %d", m[1], m[2], inDoubt)
			}
		}
	})

	t.Run("the load harness measures exactly what it sent", func(t *testing.T) {
		var out bytes.Buffer
		if err := benchCmd(context.Background(), []string{"-state", d.state, "-reports", "600", "-c", "16", "-json"}, &out); err != nil {
			t.Fatalf("clima bench: %v\n%s", err, out.String())
		}
		var res bench.Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v:\n%s", err, out.String())
		}
		if res.Accepted != 600 || res.Kafka.Stored != 600 || res.RabbitMQ.Stored != 600 || res.ReportsPerSecond <= 0 || res.HopPerSecond <= 0 {
			t.Fatalf("clima bench measured %s", out.String())
		}
		// Every report is traced from its send into each store.
		for _, p := range []bench.Path{res.Kafka, res.RabbitMQ} {
			if p.Traced != 600 || p.SendP50Ms > p.SendP99Ms || p.SendP99Ms > p.SendMaxMs || p.SendMaxMs <= 0 {
				t.Fatalf("clima bench traced %s", out.String())
			}
		}
	})

	t.Run("every process clima dev started listens on loopback only", func(t *testing.T) {
		// A valid event and an invalid one (dead-lettered) wake all seven.
		testenv.PostEvent(t, d.endpoints.Broker, reportedEvent(t, "loopback-1", report(0)))
		testenv.PostEvent(t, d.endpoints.Broker, reportedEvent(t, "loopback-2", map[string]string{"description": "x"}))
		var st local.Status
		testenv.Eventually(t, time.Minute, func() error {
			st = d.status(t)
			for name, svc := range st.Services {
				if svc.Ready == 0 {
					return fmt.Errorf("%s has no replica", name)
				}
			}
			return nil
		}, "every Service to run a replica")
		pids := append(startedPIDs(st), st.RuntimePID)
		listening, err := listeningSockets(pids)
		if err != nil {
			t.Fatal(err)
		}
		if len(listening) < len(pids) {
			t.Fatalf("%d listening sockets for %d processes: %v", len(listening), len(pids), listening)
		}
		for _, l := range listening {
			if !l.addr.Addr().IsLoopback() {
				t.Errorf("pid %d listens on %s", l.pid, l.addr)
			}
		}
		t.Logf("%d processes, %d listening sockets, all on loopback", len(pids), len(listening))
	})

	t.Run("Ctrl-C stops everything clima dev started", func(t *testing.T) {
		pids := startedPIDs(d.status(t))
		if len(pids) < 2 {
			t.Fatalf("want running processes to stop, found %v", pids)
		}
		d.stop(t, syscall.SIGINT)
		if d.exitErr != nil {
			t.Fatalf("clima dev exited with %v after Ctrl-C", d.exitErr)
		}
		if !strings.Contains(d.out.String(), "nothing is left running") {
			t.Errorf("clima dev did not say it stopped everything:\n%s", d.out.String())
		}
	})
}

// alive reports whether a process exists (and is not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat))
	return len(fields) > 2 && fields[2] != "Z"
}

// abortThenRetry posts n reports to /input and gives up before reading the
// answer, once the stores hold them (the Broker took the request); then it
// retries with the same Idempotency-Key, as docs/reliability.md tells a
// client to. The retry is accepted and, once both sources have delivered its
// groups again, the stores still hold the n reports once.
func (d *devRun) abortThenRetry(t *testing.T, n int) {
	t.Helper()
	reports := make([]map[string]string, n)
	for i := range reports {
		reports[i] = report(i)
	}
	body, _ := json.Marshal(reports)
	key := fmt.Sprintf("abort-%d", time.Now().UnixNano())
	before := d.storeTotals(t)
	// What each source has delivered, in groups.
	sourcesDelivered := func() (kafka, rabbit int64) {
		for name, ds := range d.status(t).Dispatchers {
			switch {
			case strings.HasPrefix(name, "kafkasource/"):
				kafka += ds.Delivered
			case strings.HasPrefix(name, "rabbitmqsource/"):
				rabbit += ds.Delivered
			}
		}
		return kafka, rabbit
	}
	idle := func() error {
		for name, ds := range d.status(t).Dispatchers {
			if ds.InFlight != 0 {
				return fmt.Errorf("%s has %d in flight", name, ds.InFlight)
			}
		}
		return nil
	}
	u, err := url.Parse(d.endpoints.Services["ingest"])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /input HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
		u.Host, key, len(body), body)
	testenv.Eventually(t, time.Minute, func() error {
		if got := d.storeTotals(t); got != [2]int64{before[0] + int64(n), before[1] + int64(n)} {
			return fmt.Errorf("the stores gained %d and %d", got[0]-before[0], got[1]-before[1])
		}
		return idle()
	}, "the first attempt to be stored")
	conn.Close() // the client gives up without reading the answer
	kafkaBefore, rabbitBefore := sourcesDelivered()

	resp := testenv.Post(t, d.endpoints.Services["ingest"]+"/input", "application/json", body, map[string]string{"Idempotency-Key": key})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("the retry: %d %s", resp.Status, resp.Body)
	}
	// Any group of the retry that a store applied again would raise its
	// total: once each source has delivered some of them and none is in
	// flight, the totals tell.
	testenv.Eventually(t, time.Minute, func() error {
		if kafka, rabbit := sourcesDelivered(); kafka == kafkaBefore || rabbit == rabbitBefore {
			return fmt.Errorf("the sources delivered %d and %d groups of the retry", kafka-kafkaBefore, rabbit-rabbitBefore)
		}
		return idle()
	}, "both sources to deliver the retry's groups")
	if got := d.storeTotals(t); got != [2]int64{before[0] + int64(n), before[1] + int64(n)} {
		t.Fatalf("after the retry the stores gained %d and %d, want %d once", got[0]-before[0], got[1]-before[1], n)
	}
	kafka, rabbit := sourcesDelivered()
	t.Logf("%d reports: the first attempt abandoned after the Broker took it, the retry accepted and delivered again (%d and %d groups), stored once",
		n, kafka-kafkaBefore, rabbit-rabbitBefore)
}

type listener struct {
	pid  int
	addr netip.AddrPort
}

// listeningSockets lists the TCP sockets the processes listen on: their
// socket inodes (/proc/<pid>/fd) matched with the kernel's tables of TCP
// sockets in state LISTEN (/proc/net/tcp and tcp6).
func listeningSockets(pids []int) ([]listener, error) {
	listen := map[string]netip.AddrPort{} // by inode
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			addr, err := procAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", table, f[1], err)
			}
			listen[f[9]] = addr
		}
	}
	var out []listener
	for _, pid := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return nil, err
		}
		for _, fd := range fds {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			inode, ok := strings.CutPrefix(target, "socket:[")
			if addr, listening := listen[strings.TrimSuffix(inode, "]")]; ok && listening {
				out = append(out, listener{pid: pid, addr: addr})
			}
		}
	}
	return out, nil
}

// procAddr reads an address of /proc/net/tcp{,6}: hex, each 32-bit word in
// host (little-endian) order, then the port.
func procAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("not an address")
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// loadThroughHostGateway runs Locust's legacy clients against ingest
// behind a gateway that routes by the Host header and answers 404 to any
// other, as Kourier's public gateway does in a cluster: with -ingest-host
// every request lands exactly once; without it none is routed.
func (d *devRun) loadThroughHostGateway(t *testing.T) {
	e, err := local.ReadEndpoints(d.state)
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := url.Parse(e.Services["ingest"])
	if err != nil {
		t.Fatal(err)
	}
	const host = "ingest.clima.example.com"
	proxy := httputil.NewSingleHostReverseProxy(ingest)
	var routed, unrouted atomic.Int64
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != host {
			unrouted.Add(1)
			http.Error(w, "no route for host "+r.Host, http.StatusNotFound)
			return
		}
		routed.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	defer gateway.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := load(context.Background(), append([]string{"-state", d.state, "-root", d.root, "-users", "5", "-requests", "50",
			"-user", "LegacyUser", "-ingest", gateway.URL}, args...), &out)
		return out.String(), err
	}

	out, err := run("-ingest-host", host)
	if err != nil || !strings.Contains(out, "OK: 50 requests, 0 failures; 50 reports accepted") || routed.Load() != 50 || unrouted.Load() != 0 {
		t.Fatalf("clima load -ingest-host %s: %v, %d requests routed, %d not\n%s", host, err, routed.Load(), unrouted.Load(), out)
	}
	out, err = run()
	if err == nil || err.Error() != "50 of 50 requests failed" || unrouted.Load() != 50 {
		t.Fatalf("clima load without -ingest-host: %v, %d requests not routed, want all 50 refused\n%s", err, unrouted.Load(), out)
	}
}

// startedPIDs are the processes clima dev started and runs now: the
// Services' replicas and the servers.
func startedPIDs(st local.Status) []int {
	var pids []int
	for _, svc := range st.Services {
		pids = append(pids, svc.PIDs...)
	}
	for _, pid := range st.Servers {
		pids = append(pids, pid)
	}
	return pids
}
