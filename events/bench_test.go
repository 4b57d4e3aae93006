package events

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// submissions is n reports as a client sends them (n == 1: a single object).
func submissions(n int) []byte {
	subs := make([]map[string]string, n)
	for i := range subs {
		subs[i] = map[string]string{
			"description": fmt.Sprintf("Lluvia fuerte por la tarde (#%d)", i),
			"country":     []string{"gt", "México", "El Salvador"}[i%3],
			"weather":     []string{"lluvia", "Nublado", "sunny"}[i%3],
		}
	}
	var body []byte
	if n == 1 {
		body, _ = json.Marshal(subs[0])
	} else {
		body, _ = json.Marshal(subs)
	}
	return body
}

// BenchmarkAccept is ingest's work on an event: decode, validate and
// normalise its reports, give them ids, and build the validated reply.
func BenchmarkAccept(b *testing.B) {
	for _, n := range []int{1, 100, MaxReports} {
		body := submissions(n)
		b.Run(fmt.Sprintf("reports=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				reports, err := DecodeSubmissions(body)
				if err != nil {
					b.Fatal(err)
				}
				Accept(reports, "/bench", "event-1", now)
				if _, err := NewValidatedChunks("/bench", "event-1", reports, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/report")
		})
	}
}

// BenchmarkDecodeReports is the publisher's and the consumers' decoding of
// validated reports.
func BenchmarkDecodeReports(b *testing.B) {
	for _, n := range []int{1, 1000} {
		reports, err := DecodeSubmissions(submissions(n))
		if err != nil {
			b.Fatal(err)
		}
		Accept(reports, "/bench", "event-1", time.Now())
		body, _ := json.Marshal(reports)
		if n == 1 {
			body, _ = json.Marshal(reports[0])
		}
		b.Run(fmt.Sprintf("reports=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeReports(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/report")
		})
	}
}

// BenchmarkValidate is the invariant check every function runs on every
// report it receives from another.
func BenchmarkValidate(b *testing.B) {
	reports, err := DecodeSubmissions(submissions(3))
	if err != nil {
		b.Fatal(err)
	}
	Accept(reports, "/bench", "event-1", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		for i, r := range reports {
			if problems := r.Validate(i); len(problems) > 0 {
				b.Fatal(problems)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reports)), "ns/report")
}
