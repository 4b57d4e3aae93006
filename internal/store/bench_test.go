package store_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// servers are the stores to measure: Redis, and Valkey, for which a second
// redis-server stands in when valkey-server is not installed.
func servers() []struct {
	name  string
	start func(testing.TB) *testenv.Redis
} {
	valkey := "valkey"
	if _, err := exec.LookPath("valkey-server"); err != nil {
		valkey = "valkey-is-redis-server"
	}
	return []struct {
		name  string
		start func(testing.TB) *testenv.Redis
	}{{"redis", testenv.StartRedis}, {valkey, testenv.StartValkey}}
}

// openStore is a store on a server of its own, for the path named.
func openStore(tb testing.TB, start func(testing.TB) *testenv.Redis, path string, recentMax int) *store.Store {
	tb.Helper()
	r := start(tb)
	s, err := store.Open(store.Config{URL: r.URL(), Password: r.Password, Path: path,
		Retention: time.Hour, DedupeWindow: time.Hour, RecentMax: recentMax})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkSaveAll is the store script: a batch of reports (one script call
// per 1,000) in one round trip, against a real server with appendfsync
// always.
func BenchmarkSaveAll(b *testing.B) {
	for _, srv := range servers() {
		s := openStore(b, srv.start, "bench", 1000)
		for _, batch := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", srv.name, batch), func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					reports := testenv.Reports(fmt.Sprintf("save-%d-%d", batch, n), batch)
					n++
					stored, err := s.SaveAll(context.Background(), reports, time.Now())
					if err != nil || stored != batch {
						b.Fatalf("stored %d of %d: %v", stored, batch, err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/report")
			})
		}
	}
}

// BenchmarkSaveConcurrent is the store script's throughput: 64 callers,
// one report per call each, as 64 consumer requests without coalescing.
func BenchmarkSaveConcurrent(b *testing.B) {
	for _, srv := range servers() {
		s := openStore(b, srv.start, "bench", 1000)
		b.Run(srv.name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(32) // × GOMAXPROCS (2) goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := testenv.Reports(fmt.Sprintf("concurrent-%d", n.Add(1)), 1)
					if _, err := s.SaveAll(context.Background(), r, time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}
