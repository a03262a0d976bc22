package observe

import (
	"sort"
	"time"

	"github.com/hardened-runtime/hardened/observe/event"
)

// Denial is one attributed seccomp record, as the aggregator takes it.
type Denial struct {
	Container event.Container
	Time      time.Time
	Syscall   string
	Arch      string
	Action    string
	Errno     string
	Expected  bool
	PID       int
	Comm, Exe string
	UID       uint32
}

// Limits of the aggregation. The zero value of a field takes its default.
type Limits struct {
	// Window is how often the denials seen since the last event of a
	// (container, syscall, action) are summed up into one event. Default
	// 10 s.
	Window time.Duration
	// Rate and Burst bound the events per second across all containers
	// (a token bucket); events beyond it are held back and their counts go
	// into the next window's event. Defaults 20 and 100.
	Rate  float64
	Burst int
	// MaxKeys bounds the (container, syscall, action) tracked at once;
	// records beyond it are only counted (Overflow). Default 4096.
	MaxKeys int
	// Idle is how many windows without a record a key is kept: after that
	// the next record makes an immediate event again. Default 6.
	Idle int
	// Expected makes expected probes (clone3) events like the others;
	// otherwise they are only counted (metrics), never reported.
	Expected bool
}

func (l Limits) withDefaults() Limits {
	if l.Window <= 0 {
		l.Window = 10 * time.Second
	}
	if l.Rate <= 0 {
		l.Rate = 20
	}
	if l.Burst <= 0 {
		l.Burst = 100
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 4096
	}
	if l.Idle <= 0 {
		l.Idle = 6
	}
	return l
}

type aggKey struct {
	ns, id, syscall, action string
	pid                     int // for records in no container only
}

type agg struct {
	last        Denial
	pending     uint64 // records since the last event
	total       uint64
	first       time.Time // of the pending window
	idleWindows int
}

// Aggregator turns denials into events: the first denial of a (container,
// syscall, action) at once, the next ones summed up once per window, all
// of it under a global rate limit. It is not safe for concurrent use (the
// observer calls it from one goroutine).
type Aggregator struct {
	limits Limits
	emit   func(*event.Event)
	keys   map[aggKey]*agg

	tokens float64
	refill time.Time

	// Suppressed counts events the rate limit held back; Overflow the
	// records of keys beyond MaxKeys.
	Suppressed, Overflow uint64
}

// NewAggregator returns an aggregator that hands its events to emit.
func NewAggregator(l Limits, emit func(*event.Event)) *Aggregator {
	l = l.withDefaults()
	return &Aggregator{limits: l, emit: emit, keys: map[aggKey]*agg{}, tokens: float64(l.Burst)}
}

func (a *Aggregator) allow(now time.Time) bool {
	if !a.refill.IsZero() {
		a.tokens += now.Sub(a.refill).Seconds() * a.limits.Rate
		a.tokens = min(a.tokens, float64(a.limits.Burst))
	}
	a.refill = now
	if a.tokens < 1 {
		a.Suppressed++
		return false
	}
	a.tokens--
	return true
}

// Add takes one denial.
func (a *Aggregator) Add(d Denial) {
	k := aggKey{ns: d.Container.Namespace, id: d.Container.ID, syscall: d.Syscall, action: d.Action}
	if d.Container.ID == "" {
		k.pid = d.PID // processes in no container are told apart by pid
	}
	g, ok := a.keys[k]
	if !ok {
		if len(a.keys) >= a.limits.MaxKeys {
			a.Overflow++
			return
		}
		g = &agg{first: d.Time}
		a.keys[k] = g
	}
	if g.pending == 0 {
		g.first = d.Time
	}
	g.pending++
	g.total++
	g.last = d
	g.idleWindows = 0
	if !ok && (!d.Expected || a.limits.Expected) && a.allow(d.Time) {
		a.send(g, d.Time)
	}
}

// Flush makes one event per key with denials since its last event, and
// forgets the keys idle for Limits.Idle windows. The observer calls it
// every Window.
func (a *Aggregator) Flush(now time.Time) {
	keys := make([]aggKey, 0, len(a.keys))
	for k := range a.keys {
		keys = append(keys, k)
	}
	// Oldest first, so that under the rate limit nothing waits forever.
	sort.Slice(keys, func(i, j int) bool { return a.keys[keys[i]].first.Before(a.keys[keys[j]].first) })
	for _, k := range keys {
		g := a.keys[k]
		if g.pending == 0 {
			g.idleWindows++
			if g.idleWindows >= a.limits.Idle {
				delete(a.keys, k)
			}
			continue
		}
		if g.last.Expected && !a.limits.Expected {
			g.pending = 0
			continue
		}
		if a.allow(now) {
			a.send(g, now)
		}
	}
}

func (a *Aggregator) send(g *agg, now time.Time) {
	d := g.last
	a.emit(&event.Event{Time: now, Container: d.Container, Seccomp: &event.Seccomp{
		Syscall: d.Syscall, Arch: d.Arch, Action: d.Action, Errno: d.Errno, Expected: d.Expected,
		Count: g.pending, Total: g.total, First: g.first, Last: d.Time,
		PID: d.PID, Comm: d.Comm, Exe: d.Exe, UID: d.UID,
	}})
	g.pending = 0
}

// Keys is the number of (container, syscall, action) tracked.
func (a *Aggregator) Keys() int { return len(a.keys) }
