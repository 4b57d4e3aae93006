package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/store"
)

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
