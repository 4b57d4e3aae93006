package bench

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
)

// sendTimes are when the client started each request, found by the ids of
// its reports: ingest derives them from the event's source and id (at
// /input, its source and the Idempotency-Key), so they are known before
// the run and the send path only stores a time.
type sendTimes struct {
	runs  string
	event map[string]int // report id → index of the request that carried it
	at    []atomic.Int64 // per request, Unix ms of its send; 0 until sent
}

func newSendTimes(source, runID string, cfg Config, requests int) *sendTimes {
	s := &sendTimes{runs: runID, event: make(map[string]int, cfg.Reports), at: make([]atomic.Int64, requests)}
	for i := range requests {
		id := s.id(i)
		for r := range reportsIn(i, cfg) {
			s.event[events.ReportID(source, id, r)] = i
		}
	}
	return s
}

// id is the event id (or Idempotency-Key) of the i-th request.
func (s *sendTimes) id(i int) string { return s.runs + "-" + strconv.Itoa(i) }

func (s *sendTimes) sent(i int, at time.Time) { s.at[i].Store(at.UnixMilli()) }

// of returns the send time, in Unix ms, of the request that carried a
// report of this run.
func (s *sendTimes) of(reportID string) (int64, bool) {
	i, ok := s.event[reportID]
	if !ok {
		return 0, false
	}
	ms := s.at[i].Load()
	return ms, ms > 0
}

// tail reads the store's stream of recent reports as entries are added
// (before the stream's cap trims them): each entry's id is the store's
// clock, in ms, when the report was stored, so entry time − send time is
// the latency from the client's send to the report in the store. No store
// command gives a report's store time otherwise: the stream is the record.
type tail struct {
	client  *redis.Client
	last    string // the stream id read up to
	mu      sync.Mutex
	latency []int64 // ms, one per traced report
}

// startTail begins after the stream's current last entry.
func startTail(ctx context.Context, client *redis.Client) (*tail, error) {
	t := &tail{client: client, last: "0-0"}
	last, err := client.XRevRangeN(ctx, store.KeyRecent, "+", "-", 1).Result()
	if err != nil {
		return nil, err
	}
	if len(last) > 0 {
		t.last = last[0].ID
	}
	return t, nil
}

// run reads until ctx ends.
func (t *tail) run(ctx context.Context, sends *sendTimes) {
	for ctx.Err() == nil {
		streams, err := t.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{store.KeyRecent, t.last}, Count: 1000, Block: 50 * time.Millisecond,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		for _, s := range streams {
			t.add(s.Messages, sends)
		}
	}
}

func (t *tail) add(entries []redis.XMessage, sends *sendTimes) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range entries {
		t.last = e.ID
		ms, _, _ := strings.Cut(e.ID, "-")
		storedAt, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			continue
		}
		id, _ := e.Values["id"].(string)
		if sentAt, ok := sends.of(id); ok {
			t.latency = append(t.latency, max(storedAt-sentAt, 0))
		}
	}
}

// count is how many reports were traced so far.
func (t *tail) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.latency)
}

// traced returns how many reports were traced and their latency
// percentiles in ms.
func (t *tail) traced() (n int, p50, p90, p99, most int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.latency) == 0 {
		return 0, 0, 0, 0, 0
	}
	sorted := slices.Clone(t.latency)
	slices.Sort(sorted)
	at := func(q float64) int64 { return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)] }
	return len(sorted), at(0.5), at(0.9), at(0.99), sorted[len(sorted)-1]
}
