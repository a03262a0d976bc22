// Command procps stands in for the two applets the Kubernetes e2e suites
// run in their busybox image that Debian's busybox-static lacks, chosen by
// the name it is run as:
//
//	pgrep PATTERN  the pids of the processes whose name matches PATTERN (a
//	               regular expression), one per line; exit 1 when none
//	ipcs [-m]      the System V shared memory segments of the IPC
//	               namespace, in util-linux's format (key, shmid, owner,
//	               perms, bytes, nattch)
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "pgrep":
		os.Exit(pgrep(os.Args[1:]))
	case "ipcs":
		os.Exit(ipcs())
	}
	fmt.Fprintf(os.Stderr, "procps: run as pgrep or ipcs, not %s\n", os.Args[0])
	os.Exit(2)
}

func pgrep(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN")
		return 2
	}
	re, err := regexp.Compile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		return 2
	}
	entries, _ := os.ReadDir("/proc")
	found := 1
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && re.MatchString(strings.TrimSpace(string(comm))) {
			fmt.Println(pid)
			found = 0
		}
	}
	return found
}

func ipcs() int {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
		return 1
	}
	defer f.Close()
	fmt.Printf("\n------ Shared Memory Segments --------\n%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n", "key", "shmid", "owner", "perms", "bytes", "nattch", "status")
	sc := bufio.NewScanner(f)
	sc.Scan() // header: key shmid perms size cpid lpid nattch uid ...
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		key, _ := strconv.ParseInt(fields[0], 10, 64)
		perms, _ := strconv.ParseInt(fields[2], 10, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10o %-10s %-10s\n", uint32(key), fields[1], fields[7], perms&0o777, fields[3], fields[6])
	}
	fmt.Println()
	return 0
}
