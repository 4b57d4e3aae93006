package consume_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/clima-dev/clima/internal/testenv"
)

// BenchmarkConsumerRequest is one delivery of a one-report record, as the
// KafkaSource sends it, answered after the report is in a real Redis; in
// parallel the store calls of concurrent requests share round trips.
func BenchmarkConsumerRequest(b *testing.B) {
	src := sources[0]
	for _, parallel := range []int{1, 32} {
		b.Run(fmt.Sprintf("in-flight=%d", parallel), func(b *testing.B) {
			f := start(b, src.name)
			b.SetParallelism(parallel) // × GOMAXPROCS goroutines
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(n.Add(1))
					report := testenv.Reports(fmt.Sprintf("consume-%d-%d", parallel, i), 1)[0]
					resp, err := testenv.SendEvent(f.url, src.record(i, report))
					if err != nil || resp.Status != http.StatusOK {
						b.Fatalf("delivery answered %d: %v", resp.Status, err)
					}
				}
			})
			if got := f.stats(b).Total; got != n.Load() {
				b.Fatalf("Redis holds %d reports, %d were delivered", got, n.Load())
			}
		})
	}
}
