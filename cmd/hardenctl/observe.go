package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/observe"
	"github.com/hardened-runtime/hardened/observe/event"
)

func observeCommand() *cli.Command {
	return &cli.Command{
		Name:  "observe",
		Usage: "the node's observer: seccomp denials and execs as log lines, containerd events and Prometheus metrics",
		Description: `What the DaemonSet runs on every node (and anyone can run by hand): it reads
the kernel's seccomp audit records, finds the hardened container of each
through containerd, and reports them
  - as one line per event on stdout (the first denial of a container and
    syscall at once, the next ones summed up once per --window);
  - as containerd events, topic /hardened/seccomp, in the container's
    namespace: ` + "`ctr events`" + ` shows them, with the shims' /hardened/exec events;
  - as Prometheus counters on --listen (/metrics):
      hardened_seccomp_denied_total{containerd_namespace,namespace,pod,container,syscall,action,expected}
      hardened_seccomp_audited_total{...,syscall}   (trial mode: would be denied)
      hardened_execs_total{...,decision}
    and the observer's own hardened_observe_* metrics.
It needs root: CAP_AUDIT_READ, CAP_NET_ADMIN and the host's pid and network
namespaces. It keeps running while containerd restarts.

EXAMPLES:
   hardenctl observe --listen :9627
   curl -s localhost:9627/metrics | grep ^hardened_`,
		Flags: []cli.Flag{containerdAddressFlag, containerdStateFlag, procFlag, windowFlag, rateFlag, burstFlag, expectedFlag,
			&cli.StringFlag{Name: "listen", Value: ":9627", Usage: "address of the metrics endpoint (/metrics, /healthz); \"\" for none"},
			&cli.BoolFlag{Name: "publish", Value: true, Usage: "publish the seccomp events into containerd's event stream"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until SIGTERM or SIGINT)"},
		},
		Action: observeAction,
	}
}

func observeAction(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	logger := log.New(c.App.Writer, "", log.LstdFlags|log.Lmicroseconds)
	node, err := observe.NewNode(observe.NodeConfig{
		Address: c.String("address"), State: c.String("containerd-state"), ProcRoot: c.String("proc"),
		Limits: limits(c), Publish: c.Bool("publish"), Metrics: true,
		Emit: func(e *event.Event) { logger.Print("hardened: ", e) },
		Logf: func(format string, args ...any) { logger.Printf("hardenctl observe: "+format, args...) },
	})
	if err != nil {
		return err
	}
	if addr := c.String("listen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", node.Metrics().Handler())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-node.Ready():
				fmt.Fprintln(w, "ok")
			default:
				http.Error(w, "not synchronised with containerd yet", http.StatusServiceUnavailable)
			}
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Shutdown(context.Background())
		logger.Printf("hardenctl observe: metrics on http://%s/metrics", ln.Addr())
	}
	go func() {
		select {
		case <-node.Ready():
			logger.Printf("hardenctl observe: reading seccomp records from %s; %d hardened containers known", node.Source(), node.Table().Len())
		case <-ctx.Done():
		}
	}()
	err = node.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
