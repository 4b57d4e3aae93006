package bench

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/clima-dev/clima/internal/local"
)

// CPUUse is the CPU time one part of the pipeline used during a run.
type CPUUse struct {
	Part    string  `json:"part"`
	Seconds float64 `json:"seconds"`
	// MicrosPerReport is Seconds per accepted report, in µs.
	MicrosPerReport float64 `json:"us_per_report"`
}

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTicks = 100

// cpuProbe reads the CPU time of clima dev's processes, from its /status.
type cpuProbe struct {
	status string
	before map[int]float64 // by pid
	busy   machineTimes
}

// machineTimes are /proc/stat's first line: busy and total jiffies.
type machineTimes struct{ busy, total float64 }

// parts maps each process of clima dev, and the RabbitMQ server it uses,
// to the part it plays: the function's name, "runtime", "redis", ….
func (p *cpuProbe) parts(ctx context.Context) (map[int]string, error) {
	st, err := local.FetchStatus(ctx, p.status)
	if err != nil {
		return nil, err
	}
	parts := map[int]string{}
	if st.RuntimePID != 0 {
		parts[st.RuntimePID] = "clima dev (broker, dispatchers, Kafka)"
	}
	for name, s := range st.Services {
		for _, pid := range s.PIDs {
			parts[pid] = name
		}
	}
	for name, pid := range st.Servers {
		parts[pid] = name + "-server"
	}
	for _, pid := range pidsNamed("beam.smp") {
		parts[pid] = "rabbitmq-server"
	}
	return parts, nil
}

func (p *cpuProbe) start(ctx context.Context) error {
	parts, err := p.parts(ctx)
	if err != nil {
		return err
	}
	p.before = map[int]float64{}
	for pid := range parts {
		if t, ok := processCPU(pid); ok {
			p.before[pid] = t
		}
	}
	p.busy = readMachine()
	return nil
}

// stop returns each part's CPU seconds since start (a process started
// meanwhile counts whole; one that exited meanwhile is missed), and how
// busy the machine's cores were.
func (p *cpuProbe) stop(ctx context.Context, accepted int) ([]CPUUse, float64, error) {
	parts, err := p.parts(ctx)
	if err != nil {
		return nil, 0, err
	}
	now := readMachine()
	byPart := map[string]float64{}
	for pid, part := range parts {
		if t, ok := processCPU(pid); ok {
			byPart[part] += t - p.before[pid]
		}
	}
	var uses []CPUUse
	for part, secs := range byPart {
		u := CPUUse{Part: part, Seconds: secs}
		if accepted > 0 {
			u.MicrosPerReport = secs / float64(accepted) * 1e6
		}
		uses = append(uses, u)
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].Seconds > uses[j].Seconds })
	busy := 0.0
	if total := now.total - p.busy.total; total > 0 {
		busy = (now.busy - p.busy.busy) / total
	}
	return uses, busy, nil
}

// processCPU is a process's user and system CPU time so far, in seconds.
func processCPU(pid int) (float64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / clockTicks, true
}

func readMachine() machineTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	var t machineTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// pidsNamed finds the processes whose command is name.
func pidsNamed(name string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
