package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// faultRow is one line of the table TestFaults prints.
type faultRow struct {
	fault                         string
	sent, accepted, redis, valkey int64
	lost, duplicated              int64
}

// TestFaults breaks things on purpose while a stream of 5,000 reports (in
// events of 10) flows through `clima dev`, and checks after each recovery that every
// accepted report is in each store exactly once.
func TestFaults(t *testing.T) {
	testenv.RabbitExclusive(t) // it stops RabbitMQ: no other test may use it meanwhile
	d := startDev(t)
	want := newExpected()
	next := 0
	var rows []faultRow

	// stream sends n single-report events from 8 senders and calls inject
	// once a third of them are in.
	stream := func(t *testing.T, fault string, n int, inject func(t *testing.T)) {
		t.Helper()
		before := d.storeTotals(t)
		// Events of 10 reports: a stream of n reports in n/10 events.
		evs := make([]testenv.Event, n/10)
		for i := range evs {
			batch := make([]map[string]string, 10)
			for j := range batch {
				batch[j] = report(next)
				want.add(normalised(next))
				next++
			}
			evs[i] = reportedEvent(t, "fault-"+strconv.Itoa(next), batch)
		}
		var accepted atomic.Int64
		sent := make(chan error, 1)
		go func() { sent <- d.sendCounting(evs, 8, &accepted) }()
		testenv.Eventually(t, time.Minute, func() error {
			if n := accepted.Load(); n < int64(len(evs)/3) {
				return fmt.Errorf("%d accepted", n)
			}
			return nil
		}, "a third of the stream to be accepted")
		inject(t)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		d.awaitStores(t, want, 4*time.Minute)
		after := d.storeTotals(t)
		row := faultRow{fault: fault, sent: int64(n), accepted: 10 * accepted.Load(), redis: after[0] - before[0], valkey: after[1] - before[1]}
		for _, stored := range []int64{row.redis, row.valkey} {
			row.lost = max(row.lost, row.accepted-stored)
			row.duplicated = max(row.duplicated, stored-row.accepted)
		}
		rows = append(rows, row)
	}

	t.Run("RabbitMQ restarted", func(t *testing.T) {
		stream(t, "RabbitMQ restarted", 5000, func(t *testing.T) { testenv.RestartRabbit(t, 0) })
	})
	t.Run("Redis of the Kafka path restarted", func(t *testing.T) {
		stream(t, "Redis (Kafka path) killed and restarted", 5000, func(t *testing.T) {
			pid := d.status(t).Servers["redis"]
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("killing redis-server %d: %v", pid, err)
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				if p := d.status(t).Servers["redis"]; p == pid || p == 0 {
					return fmt.Errorf("not restarted")
				}
				return nil
			}, "Redis to be restarted")
		})
	})
	t.Run("each function killed in turn", func(t *testing.T) {
		stream(t, "SIGKILL of ingest, publisher, both writers, both consumers", 5000, func(t *testing.T) {
			for _, name := range []string{"ingest", "publisher", "kafka-writer", "rabbit-writer", "kafka-consumer", "rabbit-consumer"} {
				var pid int
				testenv.Eventually(t, 30*time.Second, func() error {
					if pids := d.status(t).Services[name].PIDs; len(pids) > 0 {
						pid = pids[0]
						return nil
					}
					return fmt.Errorf("%s has no process", name)
				}, "%s to run", name)
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("killing %s (%d): %v", name, pid, err)
				}
				time.Sleep(300 * time.Millisecond) // let traffic reach the next one
			}
		})
	})
	t.Run("RabbitMQ unreachable for 10s", func(t *testing.T) {
		stream(t, "RabbitMQ unreachable for 10 s", 5000, func(t *testing.T) { testenv.RestartRabbit(t, 10*time.Second) })
	})
	t.Run("every delivery duplicated", func(t *testing.T) {
		d.setFaults(t, `{"duplicate_deliveries": true}`)
		stream(t, "every delivery duplicated", 5000, func(*testing.T) {})
		d.setFaults(t, `{"duplicate_deliveries": false}`)
	})

	var table strings.Builder
	fmt.Fprintf(&table, "\nreports per fault (sent in events of 10 reports):\n| %-58s | %5s | %8s | %6s | %6s | %4s | %10s |\n", "fault", "sent", "accepted", "Redis", "Valkey", "lost", "duplicated")
	fmt.Fprintf(&table, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 60), strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 8), strings.Repeat("-", 8), strings.Repeat("-", 6), strings.Repeat("-", 12))
	for _, r := range rows {
		fmt.Fprintf(&table, "| %-58s | %5d | %8d | %6d | %6d | %4d | %10d |\n", r.fault, r.sent, r.accepted, r.redis, r.valkey, r.lost, r.duplicated)
	}
	t.Log(table.String())
}

// storeTotals reads total_messages of Redis and Valkey.
func (d *devRun) storeTotals(t *testing.T) [2]int64 {
	t.Helper()
	var totals [2]int64
	for i, c := range []*redis.Client{d.redis, d.valkey} {
		st, err := store.ReadStats(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		totals[i] = st.Total
	}
	return totals
}

// sendCounting sends events in slices of 100, counting the 202s as they
// come; it runs on its own goroutine, so it returns its error.
func (d *devRun) sendCounting(evs []testenv.Event, workers int, accepted *atomic.Int64) error {
	for start := 0; start < len(evs); start += 100 {
		slice := evs[start:min(start+100, len(evs))]
		if err := d.send(slice, workers); err != nil {
			return err
		}
		accepted.Add(int64(len(slice)))
	}
	return nil
}

func (d *devRun) setFaults(t *testing.T, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, strings.TrimSuffix(d.endpoints.Status, "/status")+"/faults", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("setting faults %s: %v %v", body, err, resp)
	}
	resp.Body.Close()
}
