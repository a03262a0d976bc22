// Command testregistry serves an in-memory OCI registry over plain HTTP for
// the end-to-end tests (signtest.NewRegistry: go-containerregistry's
// registry with the referrers API), so that containerd can pull from it and
// a test can stop it by PID to make "the registry went away".
//
//	testregistry [--addr 127.0.0.1:0] [--addr-file F] [--no-referrers] [--verbose]
//
// Once listening it writes the actual host:port to --addr-file (atomically)
// and to stdout. SIGTERM or SIGINT stops it; everything stored is lost.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "testregistry: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	addrFile := flag.String("addr-file", "", "write the host:port listened on to this file once listening")
	noReferrers := flag.Bool("no-referrers", false, "answer 404 to the referrers API, as registries before OCI 1.1 do")
	verbose := flag.Bool("verbose", false, "log each request to stderr, one line each")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	opts := signtest.RegistryOptions{NoReferrers: *noReferrers}
	if *verbose {
		opts.Log = os.Stderr
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: signtest.NewRegistry(opts), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	actual := ln.Addr().String()
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, []byte(actual+"\n")); err != nil {
			srv.Close()
			return err
		}
	}
	fmt.Println(actual)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigs:
		if *verbose {
			fmt.Fprintf(os.Stderr, "testregistry: %v, stopping\n", sig)
		}
		return srv.Close()
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// writeAtomic writes data to a temporary file beside path and renames it,
// so a reader never sees a partial address.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
