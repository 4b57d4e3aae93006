// Package fnruntime is the one runtime every clima function runs in: it reads
// the settings Knative gives (PORT, K_SERVICE), serves the function over HTTP
// (gorilla/mux, next to /health/readiness and /health/liveness) or gRPC (with
// the standard health service), and on SIGTERM stops taking work, drains what
// is in flight and closes the function's clients so that their buffers flush.
package fnruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"google.golang.org/grpc"

	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/httpserver"
	"github.com/clima-dev/clima/internal/telemetry"
)

// Timeouts of every server and of the stages of a shutdown.
const (
	readTimeout      = 60 * time.Second
	writeTimeout     = 5 * time.Minute // Knative's default revision timeout
	idleTimeout      = 2 * time.Minute
	readinessTimeout = time.Second
	// drainTimeout bounds the wait for in-flight requests after SIGTERM; with
	// closeTimeout it fits the pod's grace period, which Knative sets to the
	// revision's timeoutSeconds (TestDrainFitsTheGracePeriod).
	drainTimeout = 25 * time.Second
	closeTimeout = 5 * time.Second
)

// Version is the commit a function was built from; ko sets it (ko.yaml).
var Version = "dev"

// Function is what a function's main builds: how it serves and what it holds.
type Function struct {
	// Routes mounts an HTTP function's endpoints. Exactly one of Routes and
	// GRPC is set.
	Routes func(*mux.Router)
	// GRPC registers a gRPC function's services.
	GRPC func(*grpc.Server)
	// Ready checks the function's dependencies; nil means always ready.
	Ready func(context.Context) error
	// Close flushes and closes the function's clients after the drain.
	Close func(context.Context) error
}

// Builder reads a function's settings from env and builds it.
type Builder func(ctx context.Context, env *config.Env, log *slog.Logger) (*Function, error)

// Main runs a function until SIGTERM or SIGINT and exits 0 after a clean
// drain, 1 when it could not start or stop cleanly. Run with the argument
// -list-env, it prints the environment variables it reads and exits.
func Main(build Builder) {
	if len(os.Args) == 2 && os.Args[1] == "-list-env" {
		for _, key := range ListEnv(build) {
			fmt.Println(key)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	env := config.FromOS()
	log := NewLogger(env.String("K_SERVICE", "clima"))
	if err := Run(ctx, env, log, build); err != nil {
		log.Error("function stopped", "error", err)
		stop()
		os.Exit(1)
	}
}

// ListEnv builds a function from an empty environment, without serving
// it, and returns every variable it read, the platform's too (PORT, K_SERVICE).
func ListEnv(build Builder) []string {
	env := config.New(func(string) (string, bool) { return "", false })
	env.String("K_SERVICE", "")
	readSettings(env)
	fn, _ := build(context.Background(), env, slog.New(slog.DiscardHandler))
	if fn != nil && fn.Close != nil {
		_ = fn.Close(context.Background())
	}
	return env.Keys()
}

// settings are what the runtime reads of a function's environment.
type settings struct {
	port int
	// host is LISTEN_HOST: clima dev sets 127.0.0.1, so that only it
	// reaches a function; in a pod it is unset and the function listens on
	// every interface, as Knative expects of a container.
	host      string
	debugAddr string
	metrics   telemetry.Config
}

func readSettings(env *config.Env) settings {
	return settings{
		port:      env.Int("PORT", 8080, 0, 65535),
		host:      env.String("LISTEN_HOST", ""),
		debugAddr: env.String("DEBUG_ADDR", ""),
		metrics:   telemetry.FromEnv(env),
	}
}

// NewLogger returns the structured logger every function writes with.
func NewLogger(service string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", service)
}

// Run builds the function, serves it on PORT until ctx ends, then drains;
// its metrics are served from the start to the end.
func Run(ctx context.Context, env *config.Env, log *slog.Logger, build Builder) error {
	set := readSettings(env)
	tel, err := telemetry.Start(set.metrics, env.String("K_SERVICE", "clima"), log)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = tel.Close(ctx)
	}()
	fn, err := build(ctx, env, log)
	if envErr := env.Err(); envErr != nil {
		err = fmt.Errorf("configuration: %w", envErr) // the cause of any build error that follows
	}
	if err != nil {
		if fn != nil && fn.Close != nil {
			_ = fn.Close(context.Background())
		}
		return fmt.Errorf("starting: %w", err)
	}
	log.Info("starting", "version", Version, "config", env, "metrics", tel.Addr())
	if set.debugAddr != "" {
		defer serveDebug(set.debugAddr, log)()
	}

	lis, err := net.Listen("tcp", net.JoinHostPort(set.host, strconv.Itoa(set.port)))
	if err != nil {
		_ = closeFunction(fn)
		return fmt.Errorf("listening on %s port %d: %w", set.host, set.port, err)
	}
	serveErr := Serve(ctx, lis, fn, log)
	closeErr := closeFunction(fn)
	if err := errors.Join(serveErr, closeErr); err != nil {
		return err
	}
	log.Info("stopped after drain")
	return nil
}

func closeFunction(fn *Function) error {
	if fn.Close == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := fn.Close(ctx); err != nil {
		return fmt.Errorf("closing clients: %w", err)
	}
	return nil
}

// Serve serves a built function on lis until ctx ends, then drains what is
// in flight; closing the function's clients is the caller's (Run does it).
func Serve(ctx context.Context, lis net.Listener, fn *Function, log *slog.Logger) error {
	h := &health{ready: fn.Ready}
	if fn.GRPC != nil {
		return serveGRPC(ctx, lis, fn, h, log)
	}
	return serveHTTP(ctx, lis, fn, h, log)
}

// newRouter is an HTTP function's handler: its routes next to the health
// endpoints, with JSON answers for unknown paths and methods.
func newRouter(fn *Function, h *health) *mux.Router {
	router := mux.NewRouter()
	router.HandleFunc("/health/readiness", h.serveReadiness).Methods(http.MethodGet)
	router.HandleFunc("/health/liveness", h.serveLiveness).Methods(http.MethodGet)
	router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, apierr.New(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, apierr.New(http.StatusMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	if fn.Routes != nil {
		fn.Routes(router)
	}
	return router
}

func serveHTTP(ctx context.Context, lis net.Listener, fn *Function, h *health, log *slog.Logger) error {
	port := 0
	if addr, ok := lis.Addr().(*net.TCPAddr); ok {
		port = addr.Port
	}
	srv := newHTTPServer(instrumentHTTP(newRouter(fn, h), port), log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	log.Info("serving HTTP", "addr", lis.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	h.draining.Store(true)
	log.Info("draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		return fmt.Errorf("draining HTTP: %w", err)
	}
	return nil
}

// newHTTPServer bounds every phase of a connection, so that a slow or idle
// client cannot hold the server's resources.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpserver.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// health answers readiness from the function's own check; a draining
// function is never ready, so no new work is routed to it.
type health struct {
	ready    func(context.Context) error
	draining atomic.Bool
}

func (h *health) check(ctx context.Context) error {
	if h.draining.Load() {
		return errors.New("draining")
	}
	if h.ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	return h.ready(ctx)
}

func (h *health) serveReadiness(w http.ResponseWriter, r *http.Request) {
	if err := h.check(r.Context()); err != nil {
		apierr.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	apierr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// serveLiveness also says how many goroutines run, so that a leak shows.
func (h *health) serveLiveness(w http.ResponseWriter, _ *http.Request) {
	apierr.WriteJSON(w, http.StatusOK, map[string]any{"status": "alive", "goroutines": runtime.NumGoroutine()})
}
