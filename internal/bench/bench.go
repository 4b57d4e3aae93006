// Package bench measures clima end to end: it posts reports to a running
// pipeline as CloudEvents, waits until both stores hold every accepted one,
// and reads the latency of each path from the stores' own histograms. In the
// same run it measures a bare net/http hop on the same machine, so that each
// figure also comes as a ratio that carries over to other machines.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clima-dev/clima/events"
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
