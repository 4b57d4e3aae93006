package serving

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/clima-dev/clima/internal/launch"
)

// process is one running replica of a function.
type process struct {
	cmd       *exec.Cmd
	addr      string
	debugAddr string // where it serves profiles, if it does
	// metricsAddr is where it serves its metrics: its own address, as a
	// pod's, which a scrape reaches without waking the Service or counting
	// as a request to its KPA.
	metricsAddr string
	proxy       *httputil.ReverseProxy
	exited      <-chan struct{}
	inFlight    int // guarded by the service's mu
}

func (s *Service) run() (*process, time.Duration, error) {
	port, err := launch.FreePort()
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
	// The last of a key wins: these replace the manifest's METRICS_*.
	var metricsAddr string
	if s.noMetrics {
		cmd.Env = append(cmd.Env, "METRICS_PROTOCOL=none", "METRICS_ENDPOINT=")
	} else {
		metricsPort, err := launch.FreePort()
		if err != nil {
			return nil, 0, err
		}
		metricsAddr = "127.0.0.1:" + strconv.Itoa(metricsPort)
		cmd.Env = append(cmd.Env, "METRICS_PROTOCOL=prometheus", "METRICS_ENDPOINT="+metricsAddr)
	}
	var debugAddr string
	if s.debug {
		debugPort, err := launch.FreePort()
		if err != nil {
			return nil, 0, err
		}
		debugAddr = "127.0.0.1:" + strconv.Itoa(debugPort)
		cmd.Env = append(cmd.Env, "DEBUG_ADDR="+debugAddr)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	exited, err := launch.Start(cmd) // it dies with clima dev, however clima dev ends
	if err != nil {
		return nil, 0, fmt.Errorf("starting %s: %w", s.name, err)
	}
	p := &process{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), debugAddr: debugAddr, metricsAddr: metricsAddr, exited: exited}
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
	p.proxy.BufferPool = proxyBuffers
	p.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// The process went away mid-request (killed, crashed): 503 lets
		// every sender retry.
		http.Error(w, s.name+": "+err.Error(), http.StatusServiceUnavailable)
	}
	return p, took, nil
}

// proxyBuffers are the replicas' proxies' copy buffers: without a pool,
// httputil.ReverseProxy allocates 32 KiB per response.
var proxyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte { return *b.pool.Get().(*[]byte) }

func (b *bufferPool) Put(p []byte) { b.pool.Put(&p) }

const (
	// readyTimeout bounds a replica's cold start: a function starts in
	// milliseconds, a writer once its broker answers.
	readyTimeout = 30 * time.Second
	// probeTimeout is a readiness probe's, Kubernetes' default
	// timeoutSeconds (1).
	probeTimeout = time.Second
)

// waitReady polls the function's readiness, as Knative's probes do.
func (s *Service) waitReady(p *process) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := Probe(ctx, p.addr, s.grpc)
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
			return fmt.Errorf("%s not ready after %s: %w", s.name, readyTimeout, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// watch forgets a replica that exits on its own (a crash, a kill); the
// autoscaler's next decision replaces it, and a request that finds no
// replica starts one.
func (s *Service) watch(p *process) {
	<-p.exited
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.ready {
		if q == p {
			s.ready = append(s.ready[:i:i], s.ready[i+1:]...)
			s.exits++
			s.log.Warn("process exited", "pid", p.cmd.Process.Pid, "state", p.cmd.ProcessState.String())
			s.cond.Broadcast()
			return
		}
	}
}

// stopProcess asks a replica to drain and exit, and kills it after the
// Service's grace period, as the kubelet kills a pod.
func (s *Service) stopProcess(p *process) { launch.Stop(p.cmd, p.exited, s.grace) }
