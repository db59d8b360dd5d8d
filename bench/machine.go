package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strings"
)

// Machine describes where a run happened: figures from different
// machines are only comparable as ratios, and a high load average says a
// figure is pessimistic.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`      // logical CPUs of the machine
	Affinity   string `json:"affinity"`   // CPUs this process may run on (taskset), as Linux lists them
	GOMAXPROCS int    `json:"gomaxprocs"` // of the load generator
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	Hostname   string `json:"hostname"`
	// LoadAvg is the 1, 5 and 15-minute load averages when the run
	// started and, in LoadAvgEnd, when it ended.
	LoadAvg    string `json:"load_avg_start"`
	LoadAvgEnd string `json:"load_avg_end,omitempty"`
}

// readFile reads a small /proc or /sys file; the machine details are
// best-effort, so a missing file gives "".
type readFile func(name string) ([]byte, error)

// DescribeMachine reads the machine's details (Linux /proc; elsewhere
// only what the Go runtime knows).
func DescribeMachine() Machine { return describeMachine(os.ReadFile) }

func describeMachine(read readFile) Machine {
	host, _ := os.Hostname()
	m := Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Hostname:   host,
		LoadAvg:    loadAvg(read),
	}
	if b, err := read("/proc/cpuinfo"); err == nil {
		cores := 0
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if m.CPUModel == "" {
					m.CPUModel = strings.TrimSpace(v)
				}
			case "processor":
				cores++
			}
		}
		if cores > 0 {
			m.Cores = cores
		}
	}
	if b, err := read("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := read("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				m.Affinity = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg(read readFile) string {
	b, err := read("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// finish records the load average at the end of a run.
func (m *Machine) finish() { m.LoadAvgEnd = loadAvg(os.ReadFile) }
