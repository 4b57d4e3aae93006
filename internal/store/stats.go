package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
)

// Stats is what one store holds, read from the data model.
type Stats struct {
	Total       int64
	Countries   map[string]int64
	Weathers    map[string]int64
	DeadLetters int64
	Latency     Latency
}

// Latency is the end-to-end latency histogram of one path.
type Latency struct {
	Count, SumMs, MaxMs int64
	// Buckets counts reports per histogram field (BucketField).
	Buckets map[string]int64
}

// ReadStats reads the counters of the store behind rdb in one round trip.
func ReadStats(ctx context.Context, rdb *redis.Client) (Stats, error) {
	pipe := rdb.Pipeline()
	total := pipe.Get(ctx, KeyTotal)
	countries := pipe.HGetAll(ctx, KeyCountryCounts)
	weathers := pipe.HGetAll(ctx, KeyWeatherCounts)
	dead := pipe.Get(ctx, KeyDeadLetters)
	latency := pipe.HGetAll(ctx, KeyLatency)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("reading stats: %w", err)
	}
	st := Stats{
		Total:       intOrZero(total.Val()),
		Countries:   intMap(countries.Val()),
		Weathers:    intMap(weathers.Val()),
		DeadLetters: intOrZero(dead.Val()),
	}
	lat := intMap(latency.Val())
	st.Latency = Latency{Count: lat["count"], SumMs: lat["sum_ms"], MaxMs: lat["max_ms"], Buckets: map[string]int64{}}
	for k, v := range lat {
		if len(k) > 3 && k[:3] == "le_" {
			st.Latency.Buckets[k] = v
		}
	}
	return st, nil
}

func intOrZero(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func intMap(m map[string]string) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = intOrZero(v)
	}
	return out
}

// Percentile is the upper bound, in ms, of the histogram bucket that holds
// the q-quantile (0 < q ≤ 1) of the latencies; -1 when the histogram is
// empty or the quantile is past the last bound.
func (l Latency) Percentile(q float64) int64 {
	if l.Count == 0 {
		return -1
	}
	need := int64(q*float64(l.Count) + 0.999999)
	var seen int64
	for _, b := range events.LatencyBoundsMs {
		seen += l.Buckets[BucketField(b)]
		if seen >= need {
			return b
		}
	}
	return -1
}
