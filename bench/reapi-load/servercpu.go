// CPU time of the server under test, read from /proc for the process IDs the
// orchestrator passes with --server-pids. On a machine shared with other work
// a server's throughput mostly reflects the CPU share it got; the CPU it spent
// per blob, byte or action does not, so the report shows both.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicksPerSecond = 100

// parsePIDs reads a comma-separated list of process IDs.
func parsePIDs(list string) ([]int, error) {
	var pids []int
	for _, field := range strings.Split(list, ",") {
		if field == "" {
			continue
		}
		pid, err := strconv.Atoi(field)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("--server-pids: %q is not a process ID", field)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// serverCPUSeconds is the user plus system CPU time the processes have used so
// far: all their threads, and their children that have exited and been waited
// for (the commands a worker ran). A process that is gone counts as zero.
func serverCPUSeconds(pids []int) float64 {
	var ticks uint64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; fields after it are plain.
		text := string(data)
		fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
		// fields[0] is the state (field 3 of proc(5)); utime, stime, cutime and cstime are fields 14 to 17.
		if len(fields) < 15 {
			continue
		}
		for _, field := range fields[11:15] {
			value, _ := strconv.ParseUint(field, 10, 64)
			ticks += value
		}
	}
	return float64(ticks) / clockTicksPerSecond
}
