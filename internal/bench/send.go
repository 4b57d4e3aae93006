package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clima-dev/clima/events"
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
