// Command denied measures what a denied syscall costs a process: it calls
// unshare(CLONE_NEWUSER), which the restricted level's filter fails with
// EPERM, N times (default 100,000) and prints ns per call. Built static
// (CGO_ENABLED=0) and bind-mounted into the benchmark containers; with the
// level's seccomp.mode enforce each call is also a kernel audit record.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := 100_000
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			n = v
		}
	}
	start := time.Now()
	for range n {
		if _, _, e := syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER, 0, 0); e != syscall.EPERM {
			fmt.Fprintf(os.Stderr, "unshare(CLONE_NEWUSER) = %v, want EPERM (is the filter in place?)\n", e)
			os.Exit(1)
		}
	}
	fmt.Printf("%.2f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}
