// Command webserver stands in for the nginx and httpd images of the
// Kubernetes e2e suites (registry.k8s.io/e2e-test-images/nginx, httpd,
// cri-tools' hostnet-nginx) in the images the e2e tests build: a static
// HTTP server that answers every GET with 200 and a page, as those images
// do for what the suites check (a port that serves, a main page, a pid
// file, a process of that name, a line in the log).
//
// It is installed under the name of the server it stands in for; that
// name (argv[0]) picks the defaults, the environment overrides them:
//
//	nginx: LISTEN=:80, PIDFILE=/var/run/nginx.pid, "Welcome to nginx!";
//	       its command line reads "nginx: master process ..." as nginx's
//	       does (it re-executes itself under that name)
//	httpd: LISTEN=:80, "It works!", its start logged as "httpd ..."
//
// Arguments (nginx's "-g 'daemon off;'", httpd-foreground's) are ignored.
// SIGTERM, SIGINT and SIGQUIT end it with status 0.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

// masterTitle is how nginx's master process shows in /proc/PID/cmdline.
const masterTitle = "nginx: master process nginx -g daemon off;"

func main() {
	name := filepath.Base(os.Args[0])
	if os.Args[0] == masterTitle {
		name = "nginx"
	} else if name == "nginx" {
		// The suites look for "master process" in /proc/1/cmdline. The
		// process name (comm) stays nginx: it is the file's.
		err := syscall.Exec("/proc/self/exe", []string{masterTitle}, os.Environ())
		fmt.Fprintf(os.Stderr, "nginx: re-exec: %v\n", err)
		os.Exit(1)
	}
	listen, pidfile, page := ":80", "", "It works!\n"
	if name == "nginx" {
		pidfile, page = "/var/run/nginx.pid", "<h1>Welcome to nginx!</h1>\n"
	}
	if v, ok := os.LookupEnv("LISTEN"); ok {
		listen = v
	}
	if v, ok := os.LookupEnv("PIDFILE"); ok {
		pidfile = v
	}
	if pidfile != "" {
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "%s: write pid file: %v\n", name, err)
			os.Exit(1)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	fmt.Printf("%s: serving http on %s (uid %d)\n", name, listen, os.Getuid())
	err := http.ListenAndServe(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	}))
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}
