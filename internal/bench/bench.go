// Package bench measures clima end to end: it posts reports to a running
// pipeline as CloudEvents, waits until both stores hold every accepted one,
// and reads the latency of each path from the stores' own histograms. In the
// same run it measures a bare net/http hop on the same machine, so that each
// figure also comes as a ratio that carries over to other machines.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
)

// Config is one run.
type Config struct {
	// Broker is the URL clients post CloudEvents to.
	Broker string
	// Input, when set, is ingest's legacy /input URL: the run posts plain
	// JSON there, with an Idempotency-Key, instead of events to Broker.
	Input string
	// Redis and Valkey are the stores' URLs (the Kafka and RabbitMQ paths).
	Redis, Valkey string
	// Reports is how many reports to send, Batch of them per event.
	Reports, Batch int
	// Concurrency is how many requests are in flight at most.
	Concurrency int
	// Rate paces the sends, in reports per second; 0 sends as fast as the
	// pipeline takes them.
	Rate float64
	// Timeout bounds the wait for the stores after the last send.
	Timeout time.Duration
	// Hop measures a bare HTTP hop as well.
	Hop bool
	// Status is clima dev's status URL: when set, the run measures the CPU
	// time of each of its processes.
	Status string
}

// Result is what a run measured.
type Result struct {
	// Target is where the run posted: "broker" or "/input".
	Target      string  `json:"target"`
	Reports     int     `json:"reports"`
	Batch       int     `json:"batch"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	// Accepted counts reports in events the broker answered 2xx.
	Accepted int `json:"accepted"`
	// Refused counts events by the status that refused them (0: no answer).
	Refused map[string]int `json:"refused,omitempty"`
	// SendSeconds is first send → last answer.
	SendSeconds float64 `json:"send_seconds"`
	// Paths are the two stores' views of the run.
	Kafka    Path `json:"kafka_path"`
	RabbitMQ Path `json:"rabbitmq_path"`
	// EndToEndSeconds is first send → last report stored in both stores.
	EndToEndSeconds float64 `json:"end_to_end_seconds"`
	// ReportsPerSecond is Accepted / EndToEndSeconds.
	ReportsPerSecond float64 `json:"reports_per_second"`
	// HopPerSecond is the bare HTTP hop's rate at the same concurrency;
	// HopRatio is ReportsPerSecond / HopPerSecond.
	HopPerSecond float64 `json:"bare_hop_per_second,omitempty"`
	HopRatio     float64 `json:"hop_ratio,omitempty"`
	// CPU is what each process used, from first send to last store; Busy
	// is the share of the machine's CPU time that was busy meanwhile.
	CPU  []CPUUse `json:"cpu,omitempty"`
	Busy float64  `json:"machine_busy,omitempty"`
}

// Path is what one store gained during the run.
type Path struct {
	Store string `json:"store"`
	// Stored is how many reports the store gained; Complete says it gained
	// exactly what was accepted.
	Stored   int64 `json:"stored"`
	Complete bool  `json:"complete"`
	// Seconds is first send → the store's last report.
	Seconds float64 `json:"seconds"`
	// Latency percentiles (ms, upper bounds of histogram buckets) of the
	// reports stored during the run: ingest's acceptance → stored.
	P50Ms int64 `json:"p50_ms"`
	P90Ms int64 `json:"p90_ms"`
	P99Ms int64 `json:"p99_ms"`
	// Traced reports were followed from the client's send to the store
	// (the store's stream of recent reports, read as it grows); their
	// latency percentiles in ms, exact to the millisecond. The stream keeps
	// about the newest RECENT_MAX (1,000): when groups land faster than
	// that between two reads, the older entries are trimmed unread, and
	// Traced is a sample.
	Traced    int   `json:"traced"`
	SendP50Ms int64 `json:"send_p50_ms"`
	SendP90Ms int64 `json:"send_p90_ms"`
	SendP99Ms int64 `json:"send_p99_ms"`
	SendMaxMs int64 `json:"send_max_ms"`
}

// Run performs one measurement. It fails when the stores do not gain
// exactly the accepted reports before the timeout.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Reports <= 0 || cfg.Batch <= 0 || cfg.Concurrency <= 0 {
		return Result{}, errors.New("reports, batch and concurrency must be positive")
	}
	stores, err := OpenStores(ctx, cfg.Redis, cfg.Valkey)
	if err != nil {
		return Result{}, err
	}
	defer stores.Close()

	bodies := batches(cfg.Reports, cfg.Batch)
	client := newClient(cfg.Concurrency)
	res := Result{Reports: cfg.Reports, Batch: cfg.Batch, Concurrency: cfg.Concurrency, Rate: cfg.Rate, Refused: map[string]int{}}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)

	var probe *cpuProbe
	if cfg.Status != "" {
		probe = &cpuProbe{status: cfg.Status}
		if err := probe.start(ctx); err != nil {
			return Result{}, err
		}
	}
	source, target := benchSource, "broker"
	if cfg.Input != "" {
		source, target = events.SourceLegacy, "/input"
	}
	res.Target = target
	sends := newSendTimes(source, runID, cfg, len(bodies))
	tailCtx, stopTails := context.WithCancel(ctx)
	defer stopTails()
	tails, err := stores.tails(tailCtx, sends)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	watching := make(chan struct{})
	var accepted atomic.Int64
	sendDone := make(chan struct{})
	var watchErr error
	go func() {
		defer close(watching)
		watchErr = stores.Await(ctx, start, accepted.Load, sendDone, cfg.Timeout)
	}()
	refused := send(ctx, client, cfg, bodies, sends, &accepted)
	res.SendSeconds = time.Since(start).Seconds()
	close(sendDone)
	<-watching
	res.Accepted = int(accepted.Load())
	if probe != nil {
		var err error
		if res.CPU, res.Busy, err = probe.stop(ctx, res.Accepted); err != nil {
			return res, err
		}
	}
	for status, n := range refused {
		res.Refused[strconv.Itoa(status)] = n
	}

	res.Kafka, res.RabbitMQ = stores.Paths(ctx, res.Accepted)
	awaitTails(tails, res.Accepted, time.Second)
	stopTails()
	for i, p := range []*Path{&res.Kafka, &res.RabbitMQ} {
		p.Traced, p.SendP50Ms, p.SendP90Ms, p.SendP99Ms, p.SendMaxMs = tails[i].traced()
	}
	res.EndToEndSeconds = max(res.Kafka.Seconds, res.RabbitMQ.Seconds)
	if res.EndToEndSeconds > 0 {
		res.ReportsPerSecond = float64(res.Accepted) / res.EndToEndSeconds
	}
	if cfg.Hop {
		hop, err := BareHop(ctx, cfg.Concurrency, bodies[0], 2*time.Second)
		if err != nil {
			return res, err
		}
		res.HopPerSecond = hop
		res.HopRatio = res.ReportsPerSecond / hop
	}
	if watchErr != nil {
		return res, watchErr
	}
	return res, nil
}

// batches are the event bodies: reports spread over countries, weathers
// and descriptions as clients send them; a batch of one is a single object.
func batches(reports, batch int) [][]byte {
	var bodies [][]byte
	for start := 0; start < reports; start += batch {
		n := min(batch, reports-start)
		subs := make([]Report, n)
		for i := range subs {
			subs[i] = Sample(start + i)
		}
		var body []byte
		if batch == 1 {
			body, _ = json.Marshal(subs[0])
		} else {
			body, _ = json.Marshal(subs)
		}
		bodies = append(bodies, body)
	}
	return bodies
}

var (
	countries    = []string{"Guatemala", "México", "El Salvador", "Honduras", "Nicaragua", "Costa Rica", "Panamá", "España", "Colombia", "Perú"}
	weathers     = []string{"Lluvioso", "Nubloso", "Soleado", "rainy", "cloudy", "sunny"}
	descriptions = []string{
		"Lluvia fuerte por la tarde", "Cielo cubierto todo el día", "Sol y calor en la costa",
		"Llovizna ligera en la capital", "Nubes altas, sin viento", "Despejado después de la tormenta",
	}
)

// Report is a report as a client sends it.
type Report struct {
	Description string `json:"description"`
	Country     string `json:"country"`
	Weather     string `json:"weather"`
}

// Sample is the i-th report of a run.
func Sample(i int) Report {
	return Report{
		Description: fmt.Sprintf("%s (#%d)", descriptions[i%len(descriptions)], i),
		Country:     countries[i%len(countries)],
		Weather:     weathers[(i/len(countries))%len(weathers)],
	}
}

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
		},
	}
}

// send posts every body as a clima.weather.reported event in binary mode,
// concurrency at a time, paced by cfg.Rate. It counts the reports of
// accepted events and returns the refusals by status.
func send(ctx context.Context, client *http.Client, cfg Config, bodies [][]byte, sends *sendTimes, accepted *atomic.Int64) map[int]int {
	next := make(chan int)
	go func() {
		defer close(next)
		start := time.Now()
		for i := range bodies {
			if cfg.Rate > 0 {
				due := start.Add(time.Duration(float64(i*cfg.Batch) / cfg.Rate * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
				}
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	refused := map[int]int{}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for i := range next {
				sends.sent(i, time.Now())
				id := sends.id(i)
				var status int
				if cfg.Input != "" {
					status = postInput(ctx, client, cfg.Input, id, bodies[i])
				} else {
					status = post(ctx, client, cfg.Broker, id, bodies[i])
				}
				if status/100 == 2 {
					accepted.Add(int64(reportsIn(i, cfg)))
					continue
				}
				mu.Lock()
				refused[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return refused
}

func reportsIn(i int, cfg Config) int { return min(cfg.Batch, cfg.Reports-i*cfg.Batch) }

// post sends one event and returns the status, 0 when there was no answer.
func post(ctx context.Context, client *http.Client, url, id string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", benchSource)
	req.Header.Set("Ce-Type", events.TypeReported)
	req.Header.Set("Content-Type", "application/json")
	return do(client, req)
}

func do(client *http.Client, req *http.Request) int {
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// benchSource is the source of the events a run sends.
const benchSource = "/clima/bench"

// tails starts following each store's stream of recent reports.
func (s *Stores) tails(ctx context.Context, sends *sendTimes) ([]*tail, error) {
	var tails []*tail
	for _, p := range s.paths {
		t, err := startTail(ctx, p.client)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p.name, err)
		}
		go t.run(ctx, sends)
		tails = append(tails, t)
	}
	return tails, nil
}

// awaitTails gives the tails up to d to read the last reports stored.
func awaitTails(tails []*tail, reports int, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, t := range tails {
		for t.count() < reports && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// postInput posts one legacy request and returns the status, 0 when there
// was no answer.
func postInput(ctx context.Context, client *http.Client, url, key string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	return do(client, req)
}

// Stores follows Redis and Valkey (the Kafka and RabbitMQ paths) from a
// snapshot taken before a run.
type Stores struct {
	paths []*pathWatch
}

// pathWatch follows one store.
type pathWatch struct {
	name      string
	client    *redis.Client
	before    store.Stats
	total     int64         // latest total read
	doneAfter time.Duration // since the run's start, when it gained its last report of the run
}

// OpenStores connects to both stores and reads what they hold now.
func OpenStores(ctx context.Context, redisURL, valkeyURL string) (*Stores, error) {
	s := &Stores{}
	for _, p := range []struct{ name, url string }{{"redis", redisURL}, {"valkey", valkeyURL}} {
		opts, err := redis.ParseURL(p.url)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s URL: %w", p.name, err)
		}
		w := &pathWatch{name: p.name, client: redis.NewClient(opts)}
		s.paths = append(s.paths, w)
		if w.before, err = store.ReadStats(ctx, w.client); err != nil {
			s.Close()
			return nil, fmt.Errorf("reading %s: %w", p.name, err)
		}
		w.total = w.before.Total
	}
	return s, nil
}

// Close closes the connections.
func (s *Stores) Close() {
	for _, p := range s.paths {
		_ = p.client.Close()
	}
}

// Await polls both stores' totals until, once sendDone is closed, each
// gained exactly accepted(), noting when; it gives up timeout after
// sendDone, and at once when a store gained more than was accepted.
func (s *Stores) Await(ctx context.Context, start time.Time, accepted func() int64, sendDone <-chan struct{}, timeout time.Duration) error {
	return s.await(ctx, start, accepted, 0, sendDone, 0, timeout)
}

// AwaitRange waits, after a load has ended, until each store gained at
// least accepted reports and at most accepted+inDoubt: the reports in doubt
// are those of requests whose answer the client never read, which clima may
// have accepted. A store is done when it reaches the top of the range, or
// holds still for settle once within it. It fails at once when a store gained
// more than the range, and after timeout when one has not reached it.
func (s *Stores) AwaitRange(ctx context.Context, start time.Time, accepted, inDoubt int64, settle, timeout time.Duration) error {
	sent := make(chan struct{})
	close(sent)
	return s.await(ctx, start, func() int64 { return accepted }, inDoubt, sent, settle, timeout)
}

func (s *Stores) await(ctx context.Context, start time.Time, accepted func() int64, inDoubt int64, sendDone <-chan struct{}, settle, timeout time.Duration) error {
	var deadline <-chan time.Time
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	changed := make([]time.Time, len(s.paths)) // when each store's total last changed
	for {
		sent := false
		select {
		case <-sendDone:
			sent = true
			if deadline == nil {
				deadline = time.After(timeout)
			}
		default:
		}
		want := accepted()
		pending := 0
		for i, p := range s.paths {
			if p.doneAfter > 0 {
				continue
			}
			total, err := p.client.Get(ctx, store.KeyTotal).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("reading %s: %w", p.name, err)
			}
			if total != p.total || changed[i].IsZero() {
				changed[i] = time.Now()
			}
			p.total = total
			switch gained := total - p.before.Total; {
			case sent && gained == want+inDoubt:
				p.doneAfter = time.Since(start)
			case sent && inDoubt > 0 && gained >= want && time.Since(changed[i]) >= settle:
				p.doneAfter = changed[i].Sub(start) // its last report, not the end of the settle

			case sent && gained > want+inDoubt && inDoubt == 0:
				return fmt.Errorf("%s gained %d reports, more than the %d accepted", p.name, gained, want)
			case sent && gained > want+inDoubt:
				return fmt.Errorf("%s gained %d reports, more than the %d accepted and the %d whose answer was never read",
					p.name, gained, want, inDoubt)
			default:
				pending++
			}
		}
		if pending == 0 {
			return s.recheck(ctx, want+inDoubt)
		}
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("%s after the last send the stores hold %d (Redis) and %d (Valkey) of the %d accepted reports",
				timeout, s.paths[0].total-s.paths[0].before.Total, s.paths[1].total-s.paths[1].before.Total, want)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recheck reads each store's total once more when all are done: a store
// done by holding still may still gain a late report of those in doubt.
func (s *Stores) recheck(ctx context.Context, most int64) error {
	for _, p := range s.paths {
		total, err := p.client.Get(ctx, store.KeyTotal).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("reading %s: %w", p.name, err)
		}
		p.total = total
		if gained := total - p.before.Total; gained > most {
			return fmt.Errorf("%s gained %d reports, more than the %d that may have been accepted", p.name, gained, most)
		}
	}
	return nil
}

// Paths reads what each store gained since the snapshot.
func (s *Stores) Paths(ctx context.Context, accepted int) (kafkaPath, rabbitPath Path) {
	return s.paths[0].result(ctx, accepted), s.paths[1].result(ctx, accepted)
}

func (p *pathWatch) result(ctx context.Context, accepted int) Path {
	res := Path{Store: p.name, Stored: p.total - p.before.Total, Seconds: p.doneAfter.Seconds()}
	res.Complete = res.Stored == int64(accepted)
	after, err := store.ReadStats(ctx, p.client)
	if err != nil {
		return res
	}
	delta := store.Latency{Count: after.Latency.Count - p.before.Latency.Count, Buckets: map[string]int64{}}
	for k, v := range after.Latency.Buckets {
		delta.Buckets[k] = v - p.before.Latency.Buckets[k]
	}
	res.P50Ms, res.P90Ms, res.P99Ms = delta.Percentile(0.5), delta.Percentile(0.9), delta.Percentile(0.99)
	return res
}

// BareHop measures how many requests per second a bare net/http server on
// this machine answers, at the given concurrency, for bodies like body: the
// unit that a pipeline's rate is a fraction of.
func BareHop(ctx context.Context, concurrency int, body []byte, d time.Duration) (float64, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()
	url := "http://" + lis.Addr().String()
	client := newClient(concurrency)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var answered atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if post(ctx, client, url, strconv.Itoa(w)+"-"+strconv.Itoa(i), body)/100 == 2 {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if answered.Load() == 0 {
		return 0, errors.New("the bare hop answered nothing")
	}
	return float64(answered.Load()) / time.Since(start).Seconds(), nil
}
