package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// ledger records what the broker answered each sent event: accepted (202)
// or in doubt (no answer: the runtime died with the request in flight, so
// the event may or may not have been appended).
type ledger struct {
	mu       sync.Mutex
	accepted []string // event ids
	inDoubt  []string
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

func (l *ledger) record(id string, accepted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if accepted {
		l.accepted = append(l.accepted, id)
	} else {
		l.inDoubt = append(l.inDoubt, id)
	}
}

// crashEvent is the i-th event of the crash test: one report, with the id
// the store gives it.
func crashEvent(t *testing.T, i int) testenv.Event {
	return reportedEvent(t, "crash-"+strconv.Itoa(i), report(i))
}

// reportKey is where a store holds the report of crashEvent i.
func reportKey(eventID string) string {
	i, _ := strconv.Atoi(strings.TrimPrefix(eventID, "crash-"))
	return store.ReportKey(report(i)["country"], events.ReportID("test/e2e", eventID, 0))
}

// loadThenStop sends events from 8 senders and, once 1,500 more were
// accepted, stops the runtime with sig while they keep sending.
func (d *devRun) loadThenStop(t *testing.T, l *ledger, next *atomic.Int64, sig syscall.Signal) {
	t.Helper()
	before := l.count()
	stop := make(chan struct{})
	wait := d.loadUntil(t, l, next, 8, stop)
	testenv.Eventually(t, time.Minute, func() error {
		if n := l.count() - before; n < 1500 {
			return fmt.Errorf("%d accepted", n)
		}
		return nil
	}, "the load to be under way")
	d.stop(t, sig)
	close(stop)
	wait()
	t.Logf("stopped with %v mid-load: %d events accepted in all, %d in doubt", sig, len(l.accepted), len(l.inDoubt))
}

// loadUntil sends events next, next+1, … from workers senders until stop
// is closed, recording each answer; a refusal other than 202 or 503 fails
// the test.
func (d *devRun) loadUntil(t *testing.T, l *ledger, next *atomic.Int64, workers int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := crashEvent(t, int(next.Add(1)-1))
				resp, err := testenv.SendEvent(d.endpoints.Broker, e)
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					return // the runtime is gone; this one was not sent
				case err != nil:
					l.record(e.ID, false) // sent, never answered
					return
				case resp.Status == http.StatusAccepted:
					l.record(e.ID, true)
				case resp.Status == http.StatusServiceUnavailable:
					l.record(e.ID, false) // the append may have timed out after it was written
				default:
					t.Errorf("event %s: %d %s", e.ID, resp.Status, resp.Body)
					return
				}
			}
		})
	}
	return wg.Wait
}

// awaitLedger waits until both stores hold every accepted report exactly
// once, and of the reports in doubt only whole ones, once: each store's
// total equals the accepted reports plus the reports in doubt it holds.
func (d *devRun) awaitLedger(t *testing.T, l *ledger, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	held := func(c *redis.Client, ids []string) (int, []string, error) {
		pipe := c.Pipeline()
		cmds := make([]*redis.IntCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.Exists(ctx, reportKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil && len(ids) > 0 {
			return 0, nil, err
		}
		var missing []string
		for i, cmd := range cmds {
			if cmd.Val() == 0 {
				missing = append(missing, ids[i])
			}
		}
		return len(ids) - len(missing), missing, nil
	}
	testenv.Eventually(t, timeout, func() error {
		for name, c := range map[string]*redis.Client{"redis": d.redis, "valkey": d.valkey} {
			st, err := store.ReadStats(ctx, c)
			if err != nil {
				return err
			}
			if st.Total < int64(len(l.accepted)) {
				return fmt.Errorf("%s holds %d reports, %d were accepted", name, st.Total, len(l.accepted))
			}
			_, missing, err := held(c, l.accepted)
			if err != nil {
				return err
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s lacks %d accepted reports (%s, …)", name, len(missing), missing[0])
			}
			doubtful, _, err := held(c, l.inDoubt)
			if err != nil {
				return err
			}
			if want := int64(len(l.accepted) + doubtful); st.Total != want {
				return fmt.Errorf("%s counts %d reports, holds %d distinct (%d accepted, %d of %d in doubt)",
					name, st.Total, want, len(l.accepted), doubtful, len(l.inDoubt))
			}
		}
		for name, ds := range d.status(t).Dispatchers {
			if ds.InFlight != 0 {
				return fmt.Errorf("%s has %d in flight", name, ds.InFlight)
			}
		}
		return nil
	}, "both stores to hold every accepted report once")
}

// TestNothingAcceptedIsLost stops clima dev as a crash would (SIGKILL to its
// process group, right after the last 202 and in the middle of a load) and
// as Ctrl-C does mid-load; after each restart every report that got a 202
// is in Redis and in Valkey, and none is stored twice.
func TestNothingAcceptedIsLost(t *testing.T) {
	d := startDev(t)
	l := &ledger{}
	var next atomic.Int64

	// The stores' per-id dedupe would hide a replay of everything: what
	// must come back is only what was not yet delivered.
	recovered := func(t *testing.T) {
		t.Helper()
		if !strings.Contains(d.out.String(), "Kafka data reloaded from "+d.state+"/data/kafka") {
			t.Fatalf("clima dev did not say what it recovered:\n%s", d.out.String())
		}
		start := strings.Index(d.out.String(), "recovered from the last run")
		end := strings.Index(d.out.String(), "endpoints written to")
		t.Logf("after the restart:\n%s", d.out.String()[start:end])
	}

	t.Run("SIGKILL right after the last 202, then a second one mid-load", func(t *testing.T) {
		var evs []testenv.Event
		for range 3000 {
			evs = append(evs, crashEvent(t, int(next.Add(1)-1)))
		}
		d.sendEvents(t, evs, 16) // every one answered 202
		d.stop(t, syscall.SIGKILL)
		for _, e := range evs {
			l.record(e.ID, true)
		}
		d.launch(t)
		recovered(t)

		d.loadThenStop(t, l, &next, syscall.SIGKILL)
		d.launch(t)
		recovered(t)
		d.awaitLedger(t, l, 3*time.Minute)
	})

	t.Run("Ctrl-C mid-load", func(t *testing.T) {
		d.loadThenStop(t, l, &next, syscall.SIGINT)
		if d.exitErr != nil {
			t.Fatalf("clima dev exited with %v after Ctrl-C:\n%s", d.exitErr, d.out.String())
		}
		d.launch(t)
		recovered(t)
		d.awaitLedger(t, l, 3*time.Minute)
	})
}
