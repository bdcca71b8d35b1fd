package load

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc/PID/stat on
// every architecture Go supports.
const clockTicks = 100

// procSample is what the bench reads about a process from /proc.
type procSample struct {
	userTicks, sysTicks uint64 // utime and stime, all threads
	rssKiB              int64  // VmRSS
}

// cpuTicks is utime + stime.
func (p procSample) cpuTicks() uint64 { return p.userTicks + p.sysTicks }

// readProc samples pid ("self" for the load generator itself).
func readProc(pid string) (procSample, error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procSample{}, fmt.Errorf("read /proc/%s/stat: %w", pid, err)
	}
	user, sys, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("parse /proc/%s/stat: %w", pid, err)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return procSample{}, fmt.Errorf("read /proc/%s/status: %w", pid, err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("parse /proc/%s/status: %w", pid, err)
	}
	return procSample{userTicks: user, sysTicks: sys, rssKiB: rss}, nil
}

// parseStatCPU returns utime and stime (fields 14 and 15, proc(5)). The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'.
func parseStatCPU(stat []byte) (user, sys uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no ')' after the command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so utime (14) is fields[11].
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	if user, err = strconv.ParseUint(fields[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if sys, err = strconv.ParseUint(fields[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return user, sys, nil
}

// parseStatusRSS returns VmRSS in KiB.
func parseStatusRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"<n> kB\"", rest)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a zombie or kernel thread?)")
}
