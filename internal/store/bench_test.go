package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

func openStore(b *testing.B) *store.Store {
	b.Helper()
	r := testenv.StartRedis(b)
	s, err := store.Open(store.Config{URL: r.URL(), Password: r.Password, Path: "bench",
		Retention: time.Hour, DedupeWindow: time.Hour, RecentMax: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkSaveAll is the store script: one call per report, batch of them
// in one round trip, against a real redis-server with appendfsync always.
func BenchmarkSaveAll(b *testing.B) {
	s := openStore(b)
	for _, batch := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
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
