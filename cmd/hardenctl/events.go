package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/observe"
	"github.com/hardened-runtime/hardened/observe/event"
)

// Flags shared by events and observe.
var (
	containerdAddressFlag = &cli.StringFlag{Name: "address", Value: "/run/containerd/containerd.sock", Usage: "containerd's socket (\"\" for none: no container is known, use --all)"}
	containerdStateFlag   = &cli.StringFlag{Name: "containerd-state", Value: "/run/containerd", Usage: "containerd's state directory (bundles of containers that ran before this command)"}
	procFlag              = &cli.StringFlag{Name: "proc", Value: "/proc", Usage: "the host's /proc"}
	windowFlag            = &cli.DurationFlag{Name: "window", Value: 10 * time.Second, Usage: "denials of one container and syscall after the first are summed up once per window"}
	rateFlag              = &cli.Float64Flag{Name: "rate", Value: 20, Usage: "at most this many events per second (more are held back and summed up later)"}
	burstFlag             = &cli.IntFlag{Name: "burst", Value: 100, Usage: "events allowed at once above --rate"}
	expectedFlag          = &cli.BoolFlag{Name: "expected", Usage: "report expected probes too (clone3, which glibc tries at every thread start); they are always counted"}
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "show what the hardening denies and who execs into hardened containers, live",
		Description: `Reads the kernel's seccomp audit records (every syscall a hardened
container's level denied, or in trial mode would deny), finds the container of
each through containerd, and prints one line per event; also the execs the
shims record (` + "`ctr task exec`, `kubectl exec`" + `). A loop of denied calls makes one line
at once and one per --window after, with the count. Needs root (the audit
multicast group and the kernel's process events). Runs next to ` + "`hardenctl observe`" + `
and auditd.

With --output json, one JSON object per line (what ` + "`hardenctl learn --events`" + `
reads).

EXAMPLES:
   hardenctl events
   hardenctl events --output json > denials.jsonl
   hardenctl events --all --expected --window 1s`,
		Flags: []cli.Flag{outputFlag, containerdAddressFlag, containerdStateFlag, procFlag, windowFlag, rateFlag, burstFlag, expectedFlag,
			&cli.BoolFlag{Name: "all", Usage: "also the records of processes in no hardened container"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until interrupted)"},
			&cli.IntFlag{Name: "count", Usage: "stop after this many events"},
		},
		Before: checkOutput,
		Action: eventsAction,
	}
}

func eventsAction(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	print := eventPrinter(c.App.Writer, jsonOutput(c))
	count, max := 0, c.Int("count")
	node, err := observe.NewNode(observe.NodeConfig{
		Address: c.String("address"), State: c.String("containerd-state"), ProcRoot: c.String("proc"),
		Limits:       limits(c),
		Unattributed: c.Bool("all"),
		Emit: func(e *event.Event) {
			if max > 0 && count >= max {
				return
			}
			print(e)
			if count++; max > 0 && count >= max {
				cancel()
			}
		},
		Logf: func(format string, args ...any) {
			fmt.Fprintf(c.App.ErrWriter, "hardenctl events: "+format+"\n", args...)
		},
	})
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-node.Ready():
			fmt.Fprintf(c.App.ErrWriter, "hardenctl events: reading seccomp records from %s, %d hardened containers known\n", node.Source(), node.Table().Len())
		case <-ctx.Done():
		}
	}()
	return node.Run(ctx)
}

func limits(c *cli.Context) observe.Limits {
	return observe.Limits{Window: c.Duration("window"), Rate: c.Float64("rate"), Burst: c.Int("burst"), Expected: c.Bool("expected")}
}

// eventPrinter prints events as lines of text (time, then the event) or
// as JSON objects, one per line.
func eventPrinter(w io.Writer, asJSON bool) func(*event.Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(e *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		if asJSON {
			enc.Encode(e)
			return
		}
		fmt.Fprintf(w, "%s %s\n", e.Time.Local().Format("15:04:05.000"), e)
	}
}
