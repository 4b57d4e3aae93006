package local

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clima-dev/clima/internal/apierr"
	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/local/eventing"
	"github.com/clima-dev/clima/internal/local/infra"
	"github.com/clima-dev/clima/internal/local/serving"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/telemetry"
)

// Endpoints is what endpoints.json holds: where everything listens.
type Endpoints struct {
	Broker   string            `json:"broker"`
	Services map[string]string `json:"services"`
	Redis    string            `json:"redis"`
	Valkey   string            `json:"valkey"`
	RabbitMQ string            `json:"rabbitmq"`
	Kafka    string            `json:"kafka"`
	Status   string            `json:"status"`
	// Dashboard is the page that shows grafana/dashboard.json live.
	Dashboard string `json:"dashboard"`
	// Prometheus is the Prometheus that scrapes clima dev and every
	// replica; Metrics is where clima dev serves its own.
	Prometheus string `json:"prometheus"`
	Metrics    string `json:"metrics"`
}

// EndpointsFile is the name of the endpoints file in the state folder.
const EndpointsFile = "endpoints.json"

// Status is what GET /status answers.
type Status struct {
	Services    map[string]serving.ServiceStatus     `json:"services"`
	Dispatchers map[string]eventing.DispatcherStatus `json:"dispatchers"`
	// Servers are the PIDs of the servers the runtime started.
	Servers map[string]int `json:"servers"`
	// RuntimePID is clima dev's own: the broker, the dispatchers, Kafka.
	RuntimePID int `json:"runtime_pid"`
}

// Faults are the faults the runtime can inject on request (PUT /faults).
type Faults struct {
	// DuplicateDeliveries makes every dispatcher deliver each event twice.
	DuplicateDeliveries bool `json:"duplicate_deliveries"`
}

func (r *runtime) serveFaults(w http.ResponseWriter, req *http.Request) {
	var f Faults
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<10)).Decode(&f); err != nil {
		apierr.Write(w, apierr.New(http.StatusBadRequest, `want {"duplicate_deliveries": true|false}`))
		return
	}
	r.plane.DuplicateDeliveries(f.DuplicateDeliveries)
	r.log.Warn("faults set", "duplicate_deliveries", f.DuplicateDeliveries)
	apierr.WriteJSON(w, http.StatusOK, f)
}

// serveAutoscaling answers every Service's autoscaler decisions so far.
func (r *runtime) serveAutoscaling(w http.ResponseWriter, _ *http.Request) {
	decisions := map[string][]serving.Decision{}
	for name, s := range r.services {
		decisions[name] = s.Decisions()
	}
	apierr.WriteJSON(w, http.StatusOK, decisions)
}

// Replay is what GET /autoscaling/replay answers of a Service: its KPA's
// ticks so far, fed again to a fresh KPA of the same spec, and where that
// one decided otherwise (none, when what ran is Knative's KPA alone).
type Replay struct {
	Ticks      int      `json:"ticks"`
	Mismatches []string `json:"mismatches"`
}

func (r *runtime) serveReplay(w http.ResponseWriter, _ *http.Request) {
	replays := map[string]Replay{}
	for name, s := range r.services {
		ticks, mismatches := s.Replay()
		replays[name] = Replay{Ticks: ticks, Mismatches: mismatches}
	}
	apierr.WriteJSON(w, http.StatusOK, replays)
}

func (r *runtime) serveStatus(w http.ResponseWriter, _ *http.Request) {
	apierr.WriteJSON(w, http.StatusOK, r.status())
}

func (r *runtime) status() Status {
	st := Status{Services: map[string]serving.ServiceStatus{}, Dispatchers: r.plane.Status(), Servers: map[string]int{}, RuntimePID: os.Getpid()}
	for name, s := range r.services {
		st.Services[name] = s.Status()
	}
	for name, kv := range r.stores {
		if pid := kv.PID(); pid != 0 {
			st.Servers[name] = pid
		}
	}
	if r.prometheus != nil {
		st.Servers["prometheus"] = r.prometheus.PID()
	}
	return st
}

func (r *runtime) writeEndpoints() error {
	e := Endpoints{Services: map[string]string{}, RabbitMQ: r.rabbit.URL(), Kafka: strings.Join(r.kafka.Brokers(), ","), Status: r.brokerURL + "/status", Dashboard: r.dashboard.url}
	if r.prometheus != nil {
		e.Prometheus, e.Metrics = r.prometheus.URL(), "http://"+r.telemetry.Addr()+telemetry.MetricsPath
	}
	for _, address := range r.plane.BrokerAddresses() {
		e.Broker = address
	}
	for name, s := range r.services {
		e.Services[name] = s.URL()
	}
	// clima stats, load and bench read the stores as Grafana does.
	if kv, ok := r.stores["redis"]; ok {
		e.Redis = kv.URLAs(store.RoleReader.User)
	}
	if kv, ok := r.stores["valkey"]; ok {
		e.Valkey = kv.URLAs(store.RoleReader.User)
	}
	names := make([]string, 0, len(e.Services))
	for n := range e.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("clima dev is running\n  broker ingress  %s\n", e.Broker)
	for _, n := range names {
		fmt.Printf("  %-15s %s\n", n, e.Services[n])
	}
	fmt.Printf("  redis           %s\n  valkey          %s\n  rabbitmq        %s\n  kafka           %s\n  status          %s\n",
		infra.Redact(e.Redis), infra.Redact(e.Valkey), infra.Redact(e.RabbitMQ), e.Kafka, e.Status)
	fmt.Printf("  dashboard       %s  (grafana/dashboard.json, live: open it in a browser)\n", e.Dashboard)
	if e.Prometheus != "" {
		fmt.Printf("  prometheus      %s  (scrapes every replica every %s)\n  metrics         %s\n", e.Prometheus, launch.ScrapeInterval, e.Metrics)
	} else {
		fmt.Printf("  prometheus      off (-metrics=false)\n")
	}
	if len(r.recovered) > 0 {
		fmt.Printf("recovered from the last run (make run ARGS=-fresh starts from empty data):\n")
		for _, line := range r.recovered {
			fmt.Printf("  %s\n", line)
		}
	}
	// Written last: a client that finds the file finds everything running.
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(r.opts.StateDir, EndpointsFile)
	if err := os.WriteFile(path+".tmp", append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil { // whole or not at all
		return err
	}
	fmt.Printf("endpoints written to %s; Ctrl-C stops everything\n", filepath.Join(r.opts.StateDir, EndpointsFile))
	return nil
}
