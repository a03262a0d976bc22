// Command getppid measures the in-container cost of a cheap syscall: it
// calls getppid N times (default 10 million) and prints ns per call. Built
// static (CGO_ENABLED=0) and bind-mounted into the benchmark containers.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := 10_000_000
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			n = v
		}
	}
	start := time.Now()
	for range n {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	fmt.Printf("%.2f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}
