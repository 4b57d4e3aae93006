package events

import "time"

// LatencyBoundsMs are the upper bounds, in milliseconds, of a report's
// latency from ingest's acceptance to a store: the stores count each
// stored report in the first that holds it, and the consumers' histogram
// (clima.report.latency) has the same bounds, so that the two agree.
var LatencyBoundsMs = []int64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// Latency is how long r took from its acceptance to storedAt; zero when
// two machines' clocks disagree.
func Latency(r Report, storedAt time.Time) time.Duration {
	return max(0, storedAt.Sub(r.AcceptedAt))
}
