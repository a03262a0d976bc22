package observe

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-runtime/hardened/observe/audit"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/observe/proctree"
	"github.com/hardened-runtime/hardened/profiles"
)

// Config is what an Observer reads from and writes to.
type Config struct {
	// Source delivers the kernel's records (audit.Open).
	Source audit.Source
	// Tree leads exited processes to their container; nil: /proc only.
	Tree *proctree.Tree
	// Table is the hardened containers, kept up to date by a Containerd
	// watcher or by the caller.
	Table *Table
	// ProcRoot is where the host's /proc is (default /proc).
	ProcRoot string
	// Limits bound the events.
	Limits Limits
	// Unattributed makes events of the records of processes in no hardened
	// container too (they are always counted).
	Unattributed bool
	// Retry is how long a record waits for its container to become known
	// (a process that runs before its exec's event arrives). Default 3 s.
	Retry time.Duration
	// Emit gets every event. It is called from the observer's goroutine:
	// it must not block for long.
	Emit func(*event.Event)
	// Metrics, when set, count every record.
	Metrics *Metrics
}

// Stats are the observer's own counters.
type Stats struct {
	// Records were read; ByTree, ByCgroup were attributed through the fork
	// tree and through /proc/PID/cgroup; Unattributed to no container.
	Records, ByTree, ByCgroup, Unattributed uint64
	// Overruns are the times the kernel dropped records or process events.
	Overruns uint64
	// Suppressed and Overflow are the aggregator's (see Aggregator).
	Suppressed, Overflow uint64
	// Containers is the number of hardened containers in the table.
	Containers int
}

// Observer attributes the kernel's seccomp records and aggregates them.
type Observer struct {
	cfg Config

	// mu guards what follows.
	mu      sync.Mutex
	agg     *Aggregator
	stats   Stats
	pending []audit.Record
	arrived []time.Time
	// waiting counts the pending records of each pid: a pid that could
	// not be attributed a moment ago is not tried again for each record of
	// a loop.
	waiting map[int]int
}

// maxPending bounds the records waiting for their container.
const maxPending = 10000

// New returns an observer; Run starts it.
func New(cfg Config) *Observer {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 3 * time.Second
	}
	if cfg.Table == nil {
		cfg.Table = NewTable()
	}
	if cfg.Emit == nil {
		cfg.Emit = func(*event.Event) {}
	}
	cfg.Limits = cfg.Limits.withDefaults()
	o := &Observer{cfg: cfg, waiting: map[int]int{}}
	o.agg = NewAggregator(cfg.Limits, cfg.Emit)
	return o
}

// Stats returns the observer's counters.
func (o *Observer) Stats() Stats {
	o.mu.Lock()
	s := o.stats
	s.Suppressed, s.Overflow = o.agg.Suppressed, o.agg.Overflow
	o.mu.Unlock()
	s.Overruns = o.cfg.Source.Lost()
	if o.cfg.Tree != nil {
		s.Overruns += o.cfg.Tree.Lost()
	}
	s.Containers = o.cfg.Table.Len()
	return s
}

// Run reads records until ctx ends (then it closes the source and returns
// nil) or the source fails. Before it returns, the pending denials are
// flushed.
func (o *Observer) Run(ctx context.Context) error {
	recs := make(chan audit.Record, 4096)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			r, err := o.cfg.Source.Read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case recs <- r:
			case <-stop:
				return
			}
		}
	}()
	tick := time.NewTicker(min(o.cfg.Limits.Window, 500*time.Millisecond))
	defer tick.Stop()
	nextFlush := time.Now().Add(o.cfg.Limits.Window)
	finish := func() {
		o.cfg.Source.Close()
		for drained := false; !drained; {
			select {
			case r := <-recs:
				o.Handle(r, time.Now())
			default:
				drained = true
			}
		}
		o.Flush(time.Now().Add(o.cfg.Retry))
	}
	for {
		select {
		case <-ctx.Done():
			finish()
			return nil
		case err := <-readErr:
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				finish()
				return nil
			}
			finish()
			return err
		case r := <-recs:
			o.Handle(r, time.Now())
		case now := <-tick.C:
			o.retry(now)
			if !now.Before(nextFlush) {
				o.mu.Lock()
				o.agg.Flush(now)
				o.mu.Unlock()
				nextFlush = now.Add(o.cfg.Limits.Window)
			}
			for _, c := range o.cfg.Table.Purge(now) {
				if o.cfg.Metrics != nil && !o.cfg.Table.Live(c.Container) {
					o.cfg.Metrics.forget(c.Container)
				}
			}
		}
	}
}

// Flush attributes what can be and reports everything pending as of now.
func (o *Observer) Flush(now time.Time) {
	o.retry(now)
	o.mu.Lock()
	o.agg.Flush(now)
	o.mu.Unlock()
}

// Handle takes one record that arrived at now.
func (o *Observer) Handle(r audit.Record, now time.Time) {
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.record(o.cfg.Source.Name())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats.Records++
	if o.waiting[r.PID] == 0 {
		if c, how := o.attribute(r.PID); c != nil {
			o.report(r, c, how)
			return
		}
	}
	if len(o.pending) >= maxPending {
		o.report(r, nil, "")
		return
	}
	o.pending = append(o.pending, r)
	o.arrived = append(o.arrived, now)
	o.waiting[r.PID]++
}

// retry attributes the pending records again; those that waited Retry go
// to no container.
func (o *Observer) retry(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var keep []audit.Record
	var kept []time.Time
	type attribution struct {
		c   *Container
		how string
	}
	found := map[int]attribution{}
	for i, r := range o.pending {
		a, tried := found[r.PID]
		if !tried {
			a.c, a.how = o.attribute(r.PID)
			found[r.PID] = a
		}
		switch {
		case a.c != nil:
			o.report(r, a.c, a.how)
		case now.Sub(o.arrived[i]) >= o.cfg.Retry:
			o.report(r, nil, "")
		default:
			keep, kept = append(keep, r), append(kept, o.arrived[i])
			continue
		}
		if o.waiting[r.PID]--; o.waiting[r.PID] <= 0 {
			delete(o.waiting, r.PID)
		}
	}
	o.pending, o.arrived = keep, kept
}

// attribute finds the hardened container of pid: up the fork tree to an
// init or exec process the table knows ("tree"), else by the cgroup /proc
// shows ("cgroup").
func (o *Observer) attribute(pid int) (*Container, string) {
	if o.cfg.Tree != nil {
		for _, p := range o.cfg.Tree.Lineage(pid) {
			if c, ok := o.cfg.Table.byPidOf(p); ok {
				return c, "tree"
			}
		}
	} else if c, ok := o.cfg.Table.byPidOf(pid); ok {
		return c, "tree"
	}
	if lines, err := cgroupLines(o.cfg.ProcRoot, pid); err == nil {
		if c, ok := o.cfg.Table.byCgroupOf(lines); ok {
			return c, "cgroup"
		}
	}
	return nil, ""
}

func (o *Observer) report(r audit.Record, c *Container, how string) {
	switch how {
	case "tree":
		o.stats.ByTree++
	case "cgroup":
		o.stats.ByCgroup++
	}
	d := Denial{Time: r.Time, Syscall: r.SyscallName(), Arch: r.ArchName(), Action: r.Action(),
		PID: r.PID, Comm: r.Comm, Exe: r.Exe, UID: r.UID}
	d.Expected = profiles.IsExpectedProbe(d.Syscall)
	if c != nil {
		d.Container = c.Container
		d.Errno = errnoOf(c.Seccomp, d.Syscall, d.Action)
	} else {
		o.stats.Unattributed++
	}
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.denial(d)
	}
	if c != nil || o.cfg.Unattributed {
		o.agg.Add(d)
	}
}

// errnoOf is the errno a profile's errno action returns for syscall: the
// kernel's record has the action only.
func errnoOf(p *specs.LinuxSeccomp, syscallName, action string) string {
	if p == nil || action != "errno" {
		return ""
	}
	name := func(e *uint, dflt syscall.Errno) string {
		if e != nil {
			dflt = syscall.Errno(*e)
		}
		return unix.ErrnoName(dflt)
	}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if n != syscallName {
				continue
			}
			if r.Action == specs.ActErrno {
				return name(r.ErrnoRet, unix.EPERM) // runc's default errno
			}
		}
	}
	if p.DefaultAction == specs.ActErrno {
		return name(p.DefaultErrnoRet, unix.EPERM)
	}
	return ""
}
