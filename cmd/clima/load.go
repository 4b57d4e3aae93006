package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clima-dev/clima/internal/bench"
	"github.com/clima-dev/clima/internal/local"
)

// locustSummary is what loadtest/locustfile.py writes when it quits.
type locustSummary struct {
	Requests        int   `json:"requests"`
	Failures        int   `json:"failures"`
	AcceptedReports int64 `json:"accepted_reports"`
	RefusedRequests int   `json:"refused_requests"`
	// Unanswered requests were in flight when Locust stopped their user,
	// or lost their connection: clima may have accepted their reports.
	UnansweredRequests int   `json:"unanswered_requests"`
	UnansweredReports  int64 `json:"unanswered_reports"`
	// NoAnswerRequests lost their connection: Locust counts them as failures.
	NoAnswerRequests  int     `json:"no_answer_requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50Ms             float64 `json:"p50_ms"`
	P95Ms             float64 `json:"p95_ms"`
	P99Ms             float64 `json:"p99_ms"`
}

// load runs Locust headless against clima and then checks that each store
// gained exactly the reports that were accepted, plus at most those of the
// requests whose answer Locust never read.
func load(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clima load", flag.ContinueOnError)
	state := fs.String("state", ".clima", "the folder of a running clima dev (its endpoints.json)")
	root := fs.String("root", ".", "the clima repository (its loadtest/locustfile.py)")
	broker := fs.String("broker", "", "the Broker URL CloudEventsUser posts to (default: from endpoints.json)")
	ingest := fs.String("ingest", "", "ingest's URL, for LegacyUser (default: from endpoints.json)")
	ingestHost := fs.String("ingest-host", "", "the Host header LegacyUser sends to ingest: a cluster's Kourier gateway routes by it (ingest.clima.<DOMAIN>)")
	redisURL := fs.String("redis", "", "Redis URL to check (default: from endpoints.json)")
	valkeyURL := fs.String("valkey", "", "Valkey URL to check (default: from endpoints.json)")
	users := fs.Int("users", 10, "Locust users")
	spawnRate := fs.Float64("spawn-rate", 10, "users started per second")
	requests := fs.Int("requests", 10000, "stop after this many requests (0: run for -run-time)")
	runTime := fs.Duration("run-time", 0, "stop after this long (with -requests 0)")
	classes := fs.String("user", "CloudEventsUser", "Locust user classes to run, comma-separated: CloudEventsUser, LegacyUser")
	single := fs.Int("single-weight", 1, "weight of single-report requests")
	batchWeight := fs.Int("batch-weight", 0, "weight of CloudEvents batches")
	batchSize := fs.Int("batch-size", 100, "reports per CloudEvents batch")
	legacyWeight := fs.Int("legacy-batch-weight", 0, "weight of legacy arrays")
	legacySize := fs.Int("legacy-batch-size", 10000, "reports per legacy array")
	timeout := fs.Duration("timeout", storesTimeout, "how long to wait for the stores after Locust stops")
	stopTimeout := fs.Duration("stop-timeout", defaultStopTimeout, "how long Locust lets the requests in flight finish when it stops (0: it kills them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *requests == 0 && *runTime == 0 {
		return errors.New("give -requests or -run-time, or Locust runs forever")
	}
	e, _ := local.ReadEndpoints(*state) // flags may name everything instead
	e.Broker, e.Redis, e.Valkey = firstOf(*broker, e.Broker), firstOf(*redisURL, e.Redis), firstOf(*valkeyURL, e.Valkey)
	ingestURL := firstOf(*ingest, e.Services["ingest"])
	if e.Broker == "" || e.Redis == "" || e.Valkey == "" {
		return fmt.Errorf("nothing to load: start clima dev (make run), or give -broker, -ingest, -redis and -valkey (a cluster's, port-forwarded)")
	}
	locust, err := findLocust()
	if err != nil {
		return err
	}

	stores, err := bench.OpenStores(ctx, e.Redis, e.Valkey)
	if err != nil {
		return err
	}
	defer stores.Close()

	summaryFile, err := os.CreateTemp("", "clima-load-*.json")
	if err != nil {
		return err
	}
	_ = summaryFile.Close()
	defer os.Remove(summaryFile.Name())
	cmdArgs := append(locust, "-f", filepath.Join(*root, "loadtest", "locustfile.py"), "--headless",
		"-u", strconv.Itoa(*users), "-r", strconv.FormatFloat(*spawnRate, 'f', -1, 64), "--only-summary",
		"--stop-timeout", strconv.Itoa(int(math.Ceil(stopTimeout.Seconds()))))
	if *runTime > 0 {
		cmdArgs = append(cmdArgs, "-t", strconv.Itoa(int(runTime.Seconds()))+"s")
	}
	cmdArgs = append(cmdArgs, strings.Split(*classes, ",")...)
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Env = append(os.Environ(),
		"CLIMA_BROKER_URL="+e.Broker, "CLIMA_INGEST_URL="+ingestURL, "CLIMA_INGEST_HOST="+*ingestHost,
		"CLIMA_REQUESTS="+strconv.Itoa(*requests), "CLIMA_SUMMARY="+summaryFile.Name(),
		"CLIMA_SINGLE_WEIGHT="+strconv.Itoa(*single), "CLIMA_BATCH_WEIGHT="+strconv.Itoa(*batchWeight),
		"CLIMA_BATCH_SIZE="+strconv.Itoa(*batchSize), "CLIMA_LEGACY_BATCH_WEIGHT="+strconv.Itoa(*legacyWeight),
		"CLIMA_LEGACY_BATCH_SIZE="+strconv.Itoa(*legacySize))
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(out, "Locust: %d users (%s) against %s, %s\n", *users, *classes, e.Broker, budget(*requests, *runTime))
	start := time.Now()
	locustErr := cmd.Run()

	var sum locustSummary
	data, err := os.ReadFile(summaryFile.Name())
	if err == nil {
		err = json.Unmarshal(data, &sum)
	}
	if err != nil {
		return fmt.Errorf("locust wrote no summary (%v): %w", locustErr, err)
	}
	awaitErr := stores.AwaitRange(ctx, start, sum.AcceptedReports, sum.UnansweredReports, settle, *timeout)
	kafkaPath, rabbitPath := stores.Paths(ctx, int(sum.AcceptedReports))
	printLoad(out, sum, kafkaPath, rabbitPath)
	switch {
	case awaitErr != nil:
		return fmt.Errorf("the stores do not hold what was accepted: %w", awaitErr)
	case sum.Failures > sum.NoAnswerRequests:
		return fmt.Errorf("%d of %d requests failed", sum.Failures-sum.NoAnswerRequests, sum.Requests)
	case sum.UnansweredRequests > 0:
		fmt.Fprint(out, explainUnanswered(sum, kafkaPath, rabbitPath))
		return nil
	}
	fmt.Fprintf(out, "OK: %d requests, 0 failures; %d reports accepted, exactly %d in Redis and in Valkey\n",
		sum.Requests, sum.AcceptedReports, sum.AcceptedReports)
	return nil
}

const (
	// defaultStopTimeout lets the slowest request finish when Locust stops:
	// a 10,000-report array takes about a second, and ingest gives up on
	// the Broker after its SINK_TIMEOUT (TestStopTimeoutOutlastsIngest).
	defaultStopTimeout = 60 * time.Second
	// storesTimeout is how long load and bench wait, by default, for the
	// stores to hold what was accepted once the sends have ended.
	storesTimeout = 2 * time.Minute
	// settle is how long a store must hold still, once it holds every
	// accepted report, for the verdict to count what it holds of the
	// reports in doubt.
	settle = 3 * time.Second
)

// explainUnanswered says why the stores may hold more than Locust counted:
// requests whose answer it never read, which clima may have accepted. The
// stores' per-id dedupe rules out that the difference is a repeat.
func explainUnanswered(sum locustSummary, paths ...bench.Path) string {
	var b strings.Builder
	fmt.Fprintf(&b, "OK, exact up to %d requests whose answer Locust never read (%d reports: in flight when it stopped, or their connection broke):\n",
		sum.UnansweredRequests, sum.UnansweredReports)
	for _, p := range paths {
		fmt.Fprintf(&b, "  %s holds %d reports: the %d accepted and %d of the %d in doubt, which clima took before the client gave up\n",
			p.Store, p.Stored, sum.AcceptedReports, p.Stored-sum.AcceptedReports, sum.UnansweredReports)
	}
	b.WriteString("  nothing is lost and nothing doubled: a retry with the same Idempotency-Key, or the same event id, stores nothing twice (docs/reliability.md)\n")
	return b.String()
}

// findLocust finds Locust: $LOCUST, else Debian's /usr/bin/locust run by
// Debian's /usr/bin/python3 (another python3 on PATH may not see it).
func findLocust() ([]string, error) {
	if l := os.Getenv("LOCUST"); l != "" {
		return []string{l}, nil
	}
	if _, err := os.Stat("/usr/bin/locust"); err == nil {
		return []string{"/usr/bin/python3", "/usr/bin/locust"}, nil
	}
	if path, err := exec.LookPath("locust"); err == nil {
		return []string{path}, nil
	}
	return nil, errors.New("locust is not installed: `make load` installs Debian's python3-locust, or set LOCUST to a locust command")
}

func budget(requests int, runTime time.Duration) string {
	if requests > 0 {
		return fmt.Sprintf("%d requests", requests)
	}
	return "for " + runTime.String()
}

func printLoad(out io.Writer, s locustSummary, k, r bench.Path) {
	fmt.Fprintf(out, "\nLocust: %d requests, %d failures, %.0f requests/s; response p50 %.0f ms, p95 %.0f ms, p99 %.0f ms\n",
		s.Requests, s.Failures, s.RequestsPerSecond, s.P50Ms, s.P95Ms, s.P99Ms)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tKafka path (Redis)\tRabbitMQ path (Valkey)\t")
	fmt.Fprintf(w, "reports accepted\t%d\t%d\t\n", s.AcceptedReports, s.AcceptedReports)
	fmt.Fprintf(w, "reports stored\t%d\t%d\t\n", k.Stored, r.Stored)
	if s.UnansweredRequests > 0 {
		fmt.Fprintf(w, "reports never answered (in doubt)\t%d\t%d\t\n", s.UnansweredReports, s.UnansweredReports)
		fmt.Fprintf(w, "stored − accepted\t%d\t%d\t\n", k.Stored-s.AcceptedReports, r.Stored-s.AcceptedReports)
	} else {
		fmt.Fprintf(w, "exactly what was accepted\t%v\t%v\t\n", k.Complete, r.Complete)
	}
	fmt.Fprintf(w, "latency p50 (ms, at most)\t%s\t%s\t\n", ms(k.P50Ms), ms(r.P50Ms))
	fmt.Fprintf(w, "latency p99 (ms, at most)\t%s\t%s\t\n", ms(k.P99Ms), ms(r.P99Ms))
	_ = w.Flush()
}
