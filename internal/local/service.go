package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/clima-dev/clima/internal/serving"
)

// service is one Knative Service run locally: an endpoint that stays up
// (as the activator and the Service's address do in a cluster) in front of
// at most one process of the function, started on the first request and
// stopped when it has been idle for the scale-to-zero window.
type service struct {
	name   string
	binary string
	env    []string
	grpc   bool // the port is h2c: probe with gRPC health, proxy HTTP/2
	debug  bool // processes serve Go's profiles (DEBUG_ADDR)
	idle   time.Duration
	log    *slog.Logger
	dir    string // where process logs go

	endpoint *http.Server
	url      string // the local endpoint, http://127.0.0.1:port

	mu        sync.Mutex
	cond      *sync.Cond
	proc      *process
	draining  map[*process]bool // scaled down, not yet exited
	starting  bool
	inflight  int
	lastUsed  time.Time
	coldStart time.Duration // of the latest start
	starts    int
	exits     int   // processes that exited unasked (crashed, killed)
	startErr  error // of the latest start
	stopped   bool
}

// process is one running instance of a function.
type process struct {
	cmd       *exec.Cmd
	addr      string
	debugAddr string // where it serves profiles, if it does
	proxy     *httputil.ReverseProxy
	exited    chan struct{}
}

func newService(name, binary string, env []string, grpcPort bool, idle time.Duration, dir string, log *slog.Logger) *service {
	s := &service{name: name, binary: binary, env: env, grpc: grpcPort, idle: idle, dir: dir, log: log.With("service", name), draining: map[*process]bool{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// listen opens the Service's local endpoint.
func (s *service) listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s: %w", s.name, err)
	}
	s.url = "http://" + lis.Addr().String()
	s.endpoint = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.endpoint.Protocols = &protocols
	go func() { _ = s.endpoint.Serve(lis) }()
	go s.scaleToZero()
	return nil
}

// serve holds a request until a process is ready, as the activator does,
// then proxies it.
func (s *service) serve(w http.ResponseWriter, r *http.Request) {
	p, err := s.acquire(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.release(p)
	p.proxy.ServeHTTP(w, r)
}

func (s *service) acquire(ctx context.Context) (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for waited := false; ; waited = true {
		switch {
		case s.stopped:
			return nil, errors.New("clima dev is stopping")
		case s.proc != nil:
			s.inflight++
			s.lastUsed = time.Now()
			return s.proc, nil
		case waited && !s.starting && s.startErr != nil:
			return nil, s.startErr
		case !s.starting:
			s.starting, s.startErr = true, nil
			go s.start()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.cond.Wait()
	}
}

// release ends a request that acquire gave to p.
func (s *service) release(*process) {
	s.mu.Lock()
	s.inflight--
	s.lastUsed = time.Now()
	s.mu.Unlock()
}

// start runs a process and waits until it is ready.
func (s *service) start() {
	p, took, err := s.run()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting, s.startErr = false, err
	if err != nil {
		s.log.Error("cold start failed", "error", err)
		s.cond.Broadcast()
		return
	}
	if s.stopped {
		go stopProcess(p)
		s.cond.Broadcast()
		return
	}
	s.proc, s.coldStart, s.lastUsed = p, took, time.Now()
	s.starts++
	s.log.Info("cold start", "pid", p.cmd.Process.Pid, "ready_after", took.Round(time.Microsecond).String())
	s.cond.Broadcast()
	go s.watch(p)
}

func (s *service) run() (*process, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	logFile, err := os.OpenFile(fmt.Sprintf("%s/%s.log", s.dir, s.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(s.binary)
	cmd.Env = append(append([]string{}, s.env...), "PORT="+strconv.Itoa(port))
	var debugAddr string
	if s.debug {
		debugPort, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		debugAddr = "127.0.0.1:" + strconv.Itoa(debugPort)
		cmd.Env = append(cmd.Env, "DEBUG_ADDR="+debugAddr)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The process dies with clima dev, however clima dev ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("starting %s: %w", s.name, err)
	}
	p := &process{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), debugAddr: debugAddr, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := s.waitReady(p); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return nil, 0, err
	}
	took := time.Since(start)
	target, _ := url.Parse("http://" + p.addr)
	p.proxy = httputil.NewSingleHostReverseProxy(target)
	p.proxy.FlushInterval = -1
	// Idle connections to the process close soon, so that an idle process
	// holds no connection goroutines (and scales to zero with none open).
	transport := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 5 * time.Second}
	if s.grpc {
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		transport.Protocols = &protocols
	}
	p.proxy.Transport = transport
	p.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// The process went away mid-request (killed, crashed): 503 lets
		// every sender retry.
		http.Error(w, s.name+": "+err.Error(), http.StatusServiceUnavailable)
	}
	return p, took, nil
}

// waitReady polls the function's readiness, as Knative's probes do.
func (s *service) waitReady(p *process) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := serving.Probe(ctx, p.addr, s.grpc)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (see %s/%s.log)", s.name, s.dir, s.name)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s: %w", s.name, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// watch forgets a process that exits on its own (a crash, a kill), so the
// next request starts another.
func (s *service) watch(p *process) {
	<-p.exited
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == p {
		s.proc = nil
		s.exits++
		s.log.Warn("process exited", "pid", p.cmd.Process.Pid, "state", p.cmd.ProcessState.String())
		s.cond.Broadcast()
	}
}

// scaleToZero stops the process once it has been idle for the window.
func (s *service) scaleToZero() {
	tick := time.NewTicker(min(s.idle/4, 250*time.Millisecond))
	defer tick.Stop()
	for range tick.C {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		p := s.proc
		if p == nil || s.inflight > 0 || time.Since(s.lastUsed) < s.idle {
			s.mu.Unlock()
			continue
		}
		s.proc = nil // new requests wait for a new process
		s.draining[p] = true
		s.mu.Unlock()
		s.log.Info("scaling to zero", "pid", p.cmd.Process.Pid, "idle_for", s.idle.String())
		stopProcess(p)
		s.mu.Lock()
		delete(s.draining, p)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// stopProcess asks a process to drain and exit, and kills it after 30 s.
func stopProcess(p *process) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop closes the endpoint and stops the process.
func (s *service) stop(ctx context.Context) {
	s.mu.Lock()
	s.stopped = true
	p := s.proc
	s.proc = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	if s.endpoint != nil {
		_ = s.endpoint.Shutdown(ctx)
	}
	if p != nil {
		stopProcess(p)
	}
}

// ServiceStatus is what clima dev reports of one Service.
type ServiceStatus struct {
	URL string `json:"url"`
	// PIDs are its running processes, those draining after a scale-down too.
	PIDs        []int   `json:"pids"`
	InFlight    int     `json:"in_flight"`
	Starts      int     `json:"starts"`
	Exits       int     `json:"exits"`
	ColdStartMs float64 `json:"cold_start_ms"`
	// Profiles are the pprof URLs of its processes (clima dev -debug).
	Profiles []string `json:"profiles,omitempty"`
}

func (s *service) status() ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServiceStatus{URL: s.url, InFlight: s.inflight, Starts: s.starts, Exits: s.exits, ColdStartMs: float64(s.coldStart.Microseconds()) / 1000, PIDs: []int{}}
	if s.proc != nil {
		st.PIDs = append(st.PIDs, s.proc.cmd.Process.Pid)
		if s.proc.debugAddr != "" {
			st.Profiles = append(st.Profiles, "http://"+s.proc.debugAddr+"/debug/pprof/")
		}
	}
	for p := range s.draining {
		st.PIDs = append(st.PIDs, p.cmd.Process.Pid)
	}
	return st
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
