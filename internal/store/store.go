// Package store writes reports to Redis or Valkey, exactly once: a group of
// reports is applied by one server-side script call, atomic, that makes
// every update of the data model for each report whose id was not stored
// before, and none for the others. A redelivered report changes nothing.
package store

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
)

// Keys of the data model, identical in Redis and Valkey. The first two are
// the names the original dashboards read.
const (
	KeyTotal         = "total_messages"
	KeyCountryCounts = "country_counts"
	KeyWeatherCounts = "weather_counts"
	KeyRecent        = "clima:recent"
	KeyLatency       = "latency_ms"
	KeyDeadLetters   = "dead_letters"
	KeyDeadReasons   = "dead_letter_reasons"
	KeyDeadStream    = "clima:dead_letters"
)

// ReportKey is the hash that holds one report.
func ReportKey(country, id string) string { return "clima:" + country + ":" + id }

func seenKey(id string) string { return "clima:seen:" + id }

// deadSeenKey hashes a dead letter's id: an event's source and id may be long.
func deadSeenKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "clima:dead_seen:" + hex.EncodeToString(sum[:16])
}

// LatencyBucketsMs are the upper bounds of the latency histogram; a report
// counts in the first bucket that holds it (field "le_<bound>", or "le_inf").
var LatencyBucketsMs = []int64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// BucketField names the histogram field a latency counts in.
func BucketField(latencyMs int64) string {
	for _, b := range LatencyBucketsMs {
		if latencyMs <= b {
			return "le_" + strconv.FormatInt(b, 10)
		}
	}
	return "le_inf"
}

var (
	//go:embed save.lua
	saveSource string
	saveScript = redis.NewScript(saveSource)
	//go:embed dead_letter.lua
	deadLetterSource string
	deadLetterScript = redis.NewScript(deadLetterSource)
)

// Config says where a store is and how long it keeps things.
type Config struct {
	// URL is redis://host:port[/db]; the password comes separately, from a Secret.
	URL      string
	Password string
	// Path names the delivery path that writes here ("kafka", "rabbitmq").
	Path string
	// Retention is how long a report's own hash is kept.
	Retention time.Duration
	// DedupeWindow is how long a stored id is remembered; a redelivery later
	// than that would count again, so it outlasts the brokers' retention.
	DedupeWindow time.Duration
	// RecentMax caps the clima:recent stream (approximately).
	RecentMax int
}

// Store applies reports to one Redis or Valkey server. It is safe for
// concurrent use.
type Store struct {
	rdb *redis.Client
	cfg Config
}

// Open connects to the server in cfg. It does not wait for the server: a
// store that is down answers errors until it is back.
func Open(cfg Config) (*Store, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing store URL: %w", err)
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.MaxRetries = 2
	if cfg.Retention <= 0 || cfg.DedupeWindow <= 0 || cfg.RecentMax <= 0 {
		return nil, fmt.Errorf("store config needs a positive retention, dedupe window and recent cap")
	}
	return &Store{rdb: redis.NewClient(opts), cfg: cfg}, nil
}

// SaveAll stores each report unless its id was stored before, in groups
// of at most maxScriptReports per script call (each report atomically),
// all in one round trip; it returns only after the server applied them,
// with how many were new. On an error some groups may be stored: calling
// it again stores the rest and counts none twice.
func (s *Store) SaveAll(ctx context.Context, reports []events.Report, storedAt time.Time) (stored int, err error) {
	stored, err = s.saveAll(ctx, reports, storedAt)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A server restarted without its script cache: load it, once.
		if err = saveScript.Load(ctx, s.rdb).Err(); err == nil {
			stored, err = s.saveAll(ctx, reports, storedAt)
		}
	}
	if err != nil {
		return stored, fmt.Errorf("storing %d reports: %w", len(reports), err)
	}
	return stored, nil
}

// maxScriptReports bounds one script call, the size of a broker message's
// group: the server runs nothing else while a script runs (a group of
// 1,000 takes 28 ms in BenchmarkSaveAll here).
const maxScriptReports = events.MaxGroupReports

func (s *Store) saveAll(ctx context.Context, reports []events.Report, storedAt time.Time) (int, error) {
	pipe := s.rdb.Pipeline()
	var cmds []*redis.Cmd
	for start := 0; start < len(reports); start += maxScriptReports {
		keys, args := s.saveCall(reports[start:min(start+maxScriptReports, len(reports))], storedAt)
		cmds = append(cmds, saveScript.EvalSha(ctx, pipe, keys, args...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	stored := 0
	for _, c := range cmds {
		n, _ := c.Int()
		stored += n
	}
	return stored, nil
}

// saveCall is the keys and arguments of save.lua for a group of reports,
// in the order its header names them.
func (s *Store) saveCall(reports []events.Report, storedAt time.Time) ([]string, []any) {
	keys := make([]string, 0, 5+2*len(reports))
	keys = append(keys, KeyTotal, KeyCountryCounts, KeyWeatherCounts, KeyRecent, KeyLatency)
	args := make([]any, 0, 5+7*len(reports))
	args = append(args, s.cfg.Path, int64(s.cfg.Retention.Seconds()), int64(s.cfg.DedupeWindow.Seconds()),
		s.cfg.RecentMax, storedAt.UTC().Format(time.RFC3339Nano))
	for _, r := range reports {
		latency := max(0, storedAt.Sub(r.AcceptedAt).Milliseconds()) // 0: two machines' clocks disagree
		keys = append(keys, seenKey(r.ID), ReportKey(r.Country, r.ID))
		args = append(args, r.ID, r.Country, string(r.Weather), r.Description,
			r.AcceptedAt.UTC().Format(time.RFC3339Nano), latency, BucketField(latency))
	}
	return keys, args
}

// DeadLetter is an event the platform could not deliver.
type DeadLetter struct {
	// ID identifies the event (its source and id), so a redelivery counts once.
	ID string
	// Reason is what the platform said went wrong, or the event's type.
	Reason string
	// Event is the whole event, as JSON.
	Event []byte
}

// RecordDeadLetter keeps a dead letter and counts it, once per id. Dead
// letters are never trimmed: they wait for someone to look at them.
func (s *Store) RecordDeadLetter(ctx context.Context, d DeadLetter) (recorded bool, err error) {
	keys := []string{deadSeenKey(d.ID), KeyDeadLetters, KeyDeadReasons, KeyDeadStream}
	n, err := deadLetterScript.Run(ctx, s.rdb, keys, int64(s.cfg.DedupeWindow.Seconds()), d.Reason, d.Event).Int()
	if err != nil {
		return false, fmt.Errorf("recording dead letter %s: %w", d.ID, err)
	}
	return n == 1, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pinging store: %w", err)
	}
	return nil
}

// Client exposes the connection for readers of the data model (stats, tests).
func (s *Store) Client() *redis.Client { return s.rdb }

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }
