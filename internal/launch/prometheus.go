package launch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"sigs.k8s.io/yaml"
)

// How clima dev's Prometheus scrapes and keeps what it scraped.
const (
	// ScrapeInterval is short enough to see a scale-out: the KPA decides
	// every 2 s, a replica starts in milliseconds.
	ScrapeInterval = 2 * time.Second
	// scrapeTimeout stays under the interval, as Prometheus requires.
	scrapeTimeout = time.Second
	// PrometheusRetention bounds what .clima/data/prometheus keeps.
	PrometheusRetention = 24 * time.Hour
	// prometheusRetentionSize bounds it in bytes too, whichever comes first.
	prometheusRetentionSize = "512MB"
	// prometheusStartTimeout bounds the wait for /-/ready: a restart
	// replays its write-ahead log first.
	prometheusStartTimeout = 30 * time.Second
	// prometheusPoll is how often its readiness and its targets are asked.
	prometheusPoll = 50 * time.Millisecond
	// targetsFile is the file_sd_configs file the runtime rewrites as
	// replicas come and go; Prometheus watches it.
	targetsFile = "targets.json"
)

// Prometheus is a real Prometheus server (Debian's prometheus package),
// started on a free loopback port, scraping the targets of a file it
// watches.
type Prometheus struct {
	url    string
	dir    string
	api    promv1.API
	cmd    *exec.Cmd
	exited <-chan struct{}
}

// TargetGroup is one entry of a file_sd_configs file: addresses and the
// labels every sample scraped from them gets.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// prometheusConfig is the part of Prometheus' configuration file clima dev
// writes. Prometheus' own config types live in its server module
// (github.com/prometheus/prometheus), far too large a dependency for five
// fields.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval string `json:"scrape_interval"`
		ScrapeTimeout  string `json:"scrape_timeout"`
	} `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string         `json:"job_name"`
	FileSDConfigs []fileSDConfig `json:"file_sd_configs"`
}

type fileSDConfig struct {
	Files           []string `json:"files"`
	RefreshInterval string   `json:"refresh_interval"`
}

// StartPrometheus starts Prometheus with its data under dir, scraping
// every ScrapeInterval what SetTargets names, and waits until it is ready.
func StartPrometheus(ctx context.Context, dir string, log *slog.Logger) (*Prometheus, error) {
	binary, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, errors.New("prometheus is not installed: run make deps (Debian's prometheus package)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	p := &Prometheus{dir: dir}
	if err := p.SetTargets(nil); err != nil {
		return nil, err
	}
	var cfg prometheusConfig
	cfg.Global.ScrapeInterval, cfg.Global.ScrapeTimeout = ScrapeInterval.String(), scrapeTimeout.String()
	cfg.ScrapeConfigs = []scrapeConfig{{JobName: "clima", FileSDConfigs: []fileSDConfig{{
		Files: []string{filepath.Join(dir, targetsFile)}, RefreshInterval: ScrapeInterval.String()}}}}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, data, 0o644); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p.url = "http://" + addr
	client, err := api.NewClient(api.Config{Address: p.url})
	if err != nil {
		return nil, err
	}
	p.api = promv1.NewAPI(client)
	logFile, err := os.OpenFile(filepath.Join(dir, "prometheus.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command(binary, "--config.file="+configFile, "--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time="+PrometheusRetention.String(), "--storage.tsdb.retention.size="+prometheusRetentionSize,
		"--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if p.exited, err = Start(p.cmd); err != nil {
		return nil, fmt.Errorf("starting prometheus: %w", err)
	}
	if err := p.waitReady(ctx); err != nil {
		p.Close()
		return nil, err
	}
	log.Info("prometheus ready", "url", p.url, "dir", dir)
	return p, nil
}

func (p *Prometheus) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(prometheusStartTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/-/ready answered %s", resp.Status)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("prometheus exited before it was ready (see %s)", filepath.Join(p.dir, "prometheus.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("prometheus at %s not ready within %s: %w", p.url, prometheusStartTimeout, err)
		}
		time.Sleep(prometheusPoll)
	}
}

// URL is Prometheus' HTTP API and UI.
func (p *Prometheus) URL() string { return p.url }

// API is Prometheus' HTTP API, through Prometheus' own client.
func (p *Prometheus) API() promv1.API { return p.api }

// SetTargets replaces what Prometheus scrapes; the file is replaced at
// once, so that Prometheus never reads half of it.
func (p *Prometheus) SetTargets(groups []TargetGroup) error {
	if groups == nil {
		groups = []TargetGroup{}
	}
	data, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	tmp := filepath.Join(p.dir, targetsFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.dir, targetsFile))
}

// Scraped returns once Prometheus scraped the target at addr, healthy,
// after the time given; or ctx's error.
func (p *Prometheus) Scraped(ctx context.Context, addr string, after time.Time) error {
	for {
		targets, err := p.api.Targets(ctx)
		if err == nil {
			for _, t := range targets.Active {
				if string(t.Labels["instance"]) == addr && t.Health == promv1.HealthGood && t.LastScrape.After(after) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus did not scrape %s after %s: %w", addr, after.Format(time.TimeOnly), ctx.Err())
		case <-time.After(prometheusPoll):
		}
	}
}

// PID is the server's process id.
func (p *Prometheus) PID() int { return p.cmd.Process.Pid }

// Close stops Prometheus, which flushes its head block first.
func (p *Prometheus) Close() { Stop(p.cmd, p.exited, prometheusStopGrace) }

// prometheusStopGrace is how long Prometheus may take to stop cleanly.
const prometheusStopGrace = 30 * time.Second
