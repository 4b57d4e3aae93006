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
	"reflect"
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

const deadSeenPrefix = "clima:dead_seen:"

// deadSeenKey hashes a dead letter's id: an event's source and id may be long.
func deadSeenKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return deadSeenPrefix + hex.EncodeToString(sum[:16])
}

// BucketField names the latency histogram's field a latency counts in:
// "le_<bound>" of the first of events.LatencyBoundsMs that holds it, or
// "le_inf".
func BucketField(latencyMs int64) string {
	for _, b := range events.LatencyBoundsMs {
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
	// URL is redis://user@host:port[/db], the user of the client's role
	// (store.Roles); the password comes separately, from a Secret.
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
// of at most events.MaxGroupReports per script call (each report
// atomically; the server runs nothing else while a script runs, and a
// group of 1,000 takes 28 ms in BenchmarkSaveAll here),
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

func (s *Store) saveAll(ctx context.Context, reports []events.Report, storedAt time.Time) (int, error) {
	pipe := s.rdb.Pipeline()
	var cmds []*redis.Cmd
	for start := 0; start < len(reports); start += events.MaxGroupReports {
		keys, args := s.saveCall(reports[start:min(start+events.MaxGroupReports, len(reports))], storedAt)
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

// save.lua's keys and arguments, field by field in the order of its slots
// (the K_ and A_ names in its header, held equal by TestScriptSlots): the
// shared ones, then one block per report.
type (
	saveKeys struct {
		Total     string `slot:"K_TOTAL"`
		Countries string `slot:"K_COUNTRIES"`
		Weathers  string `slot:"K_WEATHERS"`
		Recent    string `slot:"K_RECENT"`
		Latency   string `slot:"K_LATENCY"`
	}
	reportKeys struct {
		Seen string `slot:"K_SEEN"`
		Hash string `slot:"K_HASH"`
	}
	saveArgs struct {
		Path       string `slot:"A_PATH"`
		RetentionS int64  `slot:"A_RETENTION"`
		DedupeS    int64  `slot:"A_DEDUPE"`
		RecentMax  int    `slot:"A_RECENT_MAX"`
		StoredAt   string `slot:"A_STORED_AT"`
	}
	reportArgs struct {
		ID          string `slot:"A_ID"`
		Country     string `slot:"A_COUNTRY"`
		Weather     string `slot:"A_WEATHER"`
		Description string `slot:"A_DESCRIPTION"`
		AcceptedAt  string `slot:"A_ACCEPTED_AT"`
		LatencyMs   int64  `slot:"A_LATENCY_MS"`
		Bucket      string `slot:"A_BUCKET"`
	}
)

var sharedKeys = saveKeys{Total: KeyTotal, Countries: KeyCountryCounts, Weathers: KeyWeatherCounts, Recent: KeyRecent, Latency: KeyLatency}

// slots appends v's fields, in their order, to dst: v is one of the layout
// types above, whose order is save.lua's, so the layout is declared once.
func slots[T any](dst []T, v any) []T {
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		dst = append(dst, rv.Field(i).Interface().(T))
	}
	return dst
}

// How many slots each block has, as the layout types say.
var (
	sharedKeyCount = reflect.TypeFor[saveKeys]().NumField()
	keysPerReport  = reflect.TypeFor[reportKeys]().NumField()
	sharedArgCount = reflect.TypeFor[saveArgs]().NumField()
	argsPerReport  = reflect.TypeFor[reportArgs]().NumField()
)

// saveCall is the keys and arguments of save.lua for a group of reports.
func (s *Store) saveCall(reports []events.Report, storedAt time.Time) ([]string, []any) {
	keys := slots(make([]string, 0, sharedKeyCount+keysPerReport*len(reports)), sharedKeys)
	args := slots(make([]any, 0, sharedArgCount+argsPerReport*len(reports)), saveArgs{Path: s.cfg.Path,
		RetentionS: int64(s.cfg.Retention.Seconds()), DedupeS: int64(s.cfg.DedupeWindow.Seconds()),
		RecentMax: s.cfg.RecentMax, StoredAt: storedAt.UTC().Format(time.RFC3339Nano)})
	for _, r := range reports {
		latency := events.Latency(r, storedAt).Milliseconds()
		keys = slots(keys, reportKeys{Seen: seenKey(r.ID), Hash: ReportKey(r.Country, r.ID)})
		args = slots(args, reportArgs{ID: r.ID, Country: r.Country, Weather: string(r.Weather), Description: r.Description,
			AcceptedAt: r.AcceptedAt.UTC().Format(time.RFC3339Nano), LatencyMs: latency, Bucket: BucketField(latency)})
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

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }
