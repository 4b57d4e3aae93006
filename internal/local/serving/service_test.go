package serving

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/testenv"
)

// asReplica, set in its environment, makes the test binary a function
// replica as the function runtime runs one: it listens on $PORT, is ready at
// /health/readiness, answers its pid, holds /hold until /release, and
// drains on SIGTERM.
const asReplica = "CLIMA_TEST_AS_REPLICA"

var quiet = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	if os.Getenv(asReplica) == "1" {
		serveAsReplica()
		return
	}
	os.Exit(m.Run())
}

func serveAsReplica() {
	released := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/readiness", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /pid", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, os.Getpid()) })
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, _ *http.Request) {
		<-released
		fmt.Fprint(w, os.Getpid())
	})
	mux.HandleFunc("GET /release", func(http.ResponseWriter, *http.Request) { close(released) })
	lis, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		os.Exit(2)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(lis) }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background())
}

func testService(t *testing.T) *Service {
	t.Helper()
	s := newService("fn", os.Args[0], append(os.Environ(), asReplica+"=1"), false, t.TempDir(), quiet)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

// get asks the Service's endpoint for path and returns the answer's body.
func get(t *testing.T, s *Service, path string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(s.url + path)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

// awaitInFlight waits until the Service counts n requests in flight. The
// endpoint releases a request once it has written the answer, a moment
// after the client read it.
func awaitInFlight(t *testing.T, s *Service, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		// The endpoint counts a request before it picks a replica: the
		// replicas' own counts say it reached one.
		atReplicas := 0
		s.mu.Lock()
		for _, p := range s.ready {
			atReplicas += p.inFlight
		}
		s.mu.Unlock()
		if got := s.Status().InFlight; got != n || atReplicas != n {
			return fmt.Errorf("%d in flight, %d at the replicas", got, atReplicas)
		}
		return nil
	}, "%d requests in flight", n)
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// A request to a Service at zero starts a replica and waits for it, as the
// activator holds it; the status counts the cold start.
func TestServiceStartsAReplicaForARequest(t *testing.T) {
	s := testService(t)
	if st := s.Status(); st.Ready != 0 || st.Starts != 0 {
		t.Fatalf("before any request: %+v", st)
	}
	pid := get(t, s, "/pid")
	st := s.Status()
	if st.Ready != 1 || st.Starts != 1 || len(st.PIDs) != 1 || strconv.Itoa(st.PIDs[0]) != pid || st.ColdStartMs <= 0 {
		t.Fatalf("after one request answered by pid %s: %+v", pid, st)
	}
	awaitInFlight(t, s, 0)
	if again := get(t, s, "/pid"); again != pid {
		t.Errorf("a second request went to pid %s, not to the ready replica %s", again, pid)
	}
}

// A replica scaled away stops taking requests at once but finishes the one
// it has; then it is stopped, and the next request starts a new one.
func TestServiceScaleToZeroDrains(t *testing.T) {
	s := testService(t)
	first := get(t, s, "/pid")
	awaitInFlight(t, s, 0)
	held := make(chan string)
	go func() { held <- get(t, s, "/hold") }()
	awaitInFlight(t, s, 1)

	s.scale(0)
	if st := s.Status(); st.Ready != 0 || st.Draining != 1 || st.Desired != 0 {
		t.Fatalf("right after scale(0): %+v", st)
	}
	pid, _ := strconv.Atoi(first)
	if !alive(pid) {
		t.Fatal("the draining replica was stopped with a request in flight")
	}
	// The release goes straight to the draining process: the Service's
	// endpoint no longer sends it anything.
	resp, err := http.Get("http://" + s.drainingAddr(t) + "/release")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-held; got != first {
		t.Errorf("the held request was answered by %q, want the draining replica %s", got, first)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if st := s.Status(); st.Draining != 0 || alive(pid) {
			return fmt.Errorf("draining %d, pid %d alive %v", st.Draining, pid, alive(pid))
		}
		return nil
	}, "the drained replica to be stopped")

	if second := get(t, s, "/pid"); second == first || second == "" {
		t.Errorf("after scale to zero, a request was answered by %q (the first replica was %s)", second, first)
	}
	if st := s.Status(); st.Starts != 2 || st.Ready != 1 {
		t.Errorf("after the second cold start: %+v", st)
	}
}

// drainingAddr is the address of the one replica draining.
func (s *Service) drainingAddr(t *testing.T) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.draining {
		return p.addr
	}
	t.Fatal("no replica drains")
	return ""
}

// A replica that dies on its own is forgotten and counted; the next request
// starts another.
func TestServiceReplacesAReplicaThatDied(t *testing.T) {
	s := testService(t)
	first, _ := strconv.Atoi(get(t, s, "/pid"))
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if st := s.Status(); st.Exits != 1 || st.Ready != 0 {
			return fmt.Errorf("exits %d, ready %d", st.Exits, st.Ready)
		}
		return nil
	}, "the killed replica to be forgotten")
	second, _ := strconv.Atoi(get(t, s, "/pid"))
	if second == first || second == 0 {
		t.Errorf("after the kill, a request was answered by pid %d (the killed one was %d)", second, first)
	}
}

// A Service that cannot start a replica answers 503 with why, instead of
// holding the request forever.
func TestServiceThatCannotStartAnswers503(t *testing.T) {
	s := newService("fn", "/nonexistent/fn", nil, false, t.TempDir(), quiet)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	resp, err := http.Get(s.url + "/pid")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := "starting fn: fork/exec /nonexistent/fn: no such file or directory\n"; resp.StatusCode != http.StatusServiceUnavailable || string(body) != want {
		t.Errorf("got %d %q, want 503 %q", resp.StatusCode, body, want)
	}
}
