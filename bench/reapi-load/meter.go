// Timing of the measured part of a figure: wall-clock seconds and the CPU
// seconds this client process spent meanwhile, so the report can show how much
// of the machine the client itself took.
package main

import (
	"sort"
	"syscall"
	"time"
)

type meter struct {
	seconds    float64
	cpuSeconds float64
	// serverPIDs are the processes whose CPU time serverCPUSeconds adds up.
	serverPIDs       []int
	serverCPUSeconds float64
}

func processCPUSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	toSeconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return toSeconds(usage.Utime) + toSeconds(usage.Stime)
}

// time runs f and adds its wall-clock time, this client's CPU time and the
// server's CPU time to the meter.
func (m *meter) time(f func() error) error {
	cpu := processCPUSeconds()
	server := serverCPUSeconds(m.serverPIDs)
	start := time.Now()
	err := f()
	m.seconds += time.Since(start).Seconds()
	m.cpuSeconds += processCPUSeconds() - cpu
	m.serverCPUSeconds += serverCPUSeconds(m.serverPIDs) - server
	return err
}

// measured fills in the timing fields of a measurement.
func (m *meter) measured(result measurement) measurement {
	result.Seconds = m.seconds
	result.ClientCPUSeconds = m.cpuSeconds
	if len(m.serverPIDs) > 0 {
		server := m.serverCPUSeconds
		result.ServerCPUSeconds = &server
	}
	return result
}

// percentileMs is the q-quantile (0..1) of latencies, nearest rank.
func percentileMs(latencies []time.Duration, q float64) float64 {
	if len(latencies) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), latencies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	index := int(q * float64(len(sorted)))
	if index >= len(sorted) {
		index = len(sorted) - 1
	}
	return float64(sorted[index].Microseconds()) / 1000
}
