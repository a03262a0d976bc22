package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/observe"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/profiles"
)

var (
	seccompModeFlag = &cli.StringFlag{Name: "seccomp-mode", Usage: "the level's seccomp.mode for this run: enforce, audit (trial: log what would be denied, deny nothing) or silent"}
	denialsFlag     = &cli.BoolFlag{Name: "denials", Usage: "when the run ends, list the syscalls the level's filter denied (or, with --seccomp-mode audit, would have denied); needs root"}
)

// withSeccompMode applies --seccomp-mode to a copy of the level.
func withSeccompMode(c *cli.Context, l *profiles.Level) (*profiles.Level, error) {
	m := c.String("seccomp-mode")
	if m == "" {
		return l, nil
	}
	l = l.Clone()
	l.Seccomp.Mode = profiles.SeccompMode(m)
	if err := l.Validate(); err != nil {
		return nil, usageError{"--seccomp-mode: " + err.Error()}
	}
	return l, nil
}

// watchPidFile waits for runc's pid file and hands on the pid.
func watchPidFile(path, id string, started func(string, int)) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				started(id, pid)
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// denials observes the seccomp records of hardenctl's own containers.
type denials struct {
	node   *observe.Node
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	events []*event.Event
}

// watchDenials starts an observer whose only containers are this run's.
func watchDenials(ctx context.Context, w *workload, level string, s *specs.Spec) (*denials, error) {
	d := &denials{done: make(chan error, 1)}
	node, err := observe.NewNode(observe.NodeConfig{
		// Everything is kept to the end: no rate limit, one window.
		Limits: observe.Limits{Window: time.Hour, Rate: 1e9, Burst: 1 << 30, Expected: true},
		Emit: func(e *event.Event) {
			d.mu.Lock()
			d.events = append(d.events, e)
			d.mu.Unlock()
		},
		Retry: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("--denials: %w", err)
	}
	d.node = node
	var profile *specs.LinuxSeccomp
	if s.Linux != nil {
		profile = s.Linux.Seccomp
	}
	w.started = func(id string, pid int) {
		node.Table().Put(&observe.Container{Container: event.Container{Namespace: "hardenctl", ID: id, Level: level}, Seccomp: profile})
		node.Table().AddPid("hardenctl", id, pid)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	go func() { d.done <- node.Run(rctx) }()
	return d, nil
}

// report waits a moment for the kernel's last records, stops the observer
// and prints what it saw, most frequent first.
func (d *denials) report(c *cli.Context) {
	time.Sleep(300 * time.Millisecond) // kauditd sends records after the syscall
	d.cancel()
	if err := <-d.done; err != nil {
		fmt.Fprintf(c.App.ErrWriter, "hardenctl: --denials: %v\n", err)
	}
	type row struct {
		syscall, action, errno string
		expected               bool
		count                  uint64
		comms                  map[string]bool
	}
	rows := map[string]*row{}
	d.mu.Lock()
	for _, e := range d.events {
		s := e.Seccomp
		k := s.Syscall + "/" + s.Action
		r, ok := rows[k]
		if !ok {
			r = &row{syscall: s.Syscall, action: s.Action, errno: s.Errno, expected: s.Expected, comms: map[string]bool{}}
			rows[k] = r
		}
		r.count += s.Count
		r.comms[s.Comm] = true
	}
	d.mu.Unlock()
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].count > list[j].count || (list[i].count == list[j].count && list[i].syscall < list[j].syscall)
	})
	if jsonOutput(c) {
		out := []map[string]any{}
		for _, r := range list {
			out = append(out, map[string]any{"syscall": r.syscall, "action": r.action, "errno": r.errno, "expected": r.expected, "count": r.count, "processes": keys(r.comms)})
		}
		writeJSON(c.App.ErrWriter, map[string]any{"denials": out, "source": d.node.Source()})
		return
	}
	if len(list) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "denials: none")
		return
	}
	tw := tabwriter.NewWriter(c.App.ErrWriter, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSCALL\tACTION\tCALLS\tBY\tNOTE")
	for _, r := range list {
		action := r.action
		if r.errno != "" {
			action += " " + r.errno
		}
		note := ""
		switch {
		case r.expected:
			note = "expected probe: " + profiles.ExpectedProbes[r.syscall]
		case r.action == "log":
			note = "trial mode: it ran; enforce would deny it"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.syscall, action, r.count, strings.Join(keys(r.comms), ","), note)
	}
	tw.Flush()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
