// Command pause stands in for registry.k8s.io/pause, the CRI sandbox
// image: the pod's first process, which holds its namespaces and does
// nothing until SIGTERM or SIGINT ends it (status 0). Its process name is
// pause, as the suites expect of a pod's PID 1.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}
