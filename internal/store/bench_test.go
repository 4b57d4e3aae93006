package store_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// openedStore is a store on a server of its own, written as the user of
// its role, with clients for what a test reads (as Grafana's user) and
// arranges (as the administrator).
type openedStore struct {
	*store.Store
	reader, admin *redis.Client
}

// openStore opens a store for the path named, as role's user.
func openStore(tb testing.TB, start func(testing.TB) *testenv.Redis, role store.Role, path string, recentMax int) openedStore {
	tb.Helper()
	r := start(tb)
	cfg := r.StoreConfig(role, path)
	cfg.RecentMax = recentMax
	return openedStore{Store: testenv.OpenStore(tb, cfg), reader: r.ClientAs(tb, store.RoleReader), admin: r.Client(tb)}
}

// BenchmarkSaveAll is the store script: a batch of reports (one script call
// per 1,000) in one round trip, against a real server with appendfsync
// always.
func BenchmarkSaveAll(b *testing.B) {
	for _, srv := range servers() {
		s := openStore(b, srv.start, store.RoleConsumer, "bench", 1000)
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
		s := openStore(b, srv.start, store.RoleConsumer, "bench", 1000)
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
