package observe

import (
	"fmt"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/observe/event"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func denial(id, syscall string, at time.Duration) Denial {
	return Denial{Container: event.Container{Namespace: "default", ID: id}, Time: t0.Add(at), Syscall: syscall, Action: "errno", PID: 7}
}

func TestAggregatorLoop(t *testing.T) {
	var got []*event.Event
	a := NewAggregator(Limits{Window: time.Second}, func(e *event.Event) { got = append(got, e) })
	// A loop of 100,000 denied calls over 3 windows: one event at once, then
	// one per window.
	for i := 0; i < 100000; i++ {
		at := time.Duration(i) * 30 * time.Microsecond
		a.Add(denial("c1", "ptrace", at))
		if i > 0 && i%33333 == 0 {
			a.Flush(t0.Add(at))
		}
	}
	a.Flush(t0.Add(4 * time.Second))
	if len(got) != 4 {
		t.Fatalf("%d events, want 4: %v", len(got), got)
	}
	var sum uint64
	for _, e := range got {
		sum += e.Seccomp.Count
	}
	last := got[len(got)-1].Seccomp
	if got[0].Seccomp.Count != 1 || sum != 100000 || last.Total != 100000 {
		t.Errorf("counts: first %d, sum %d, total %d", got[0].Seccomp.Count, sum, last.Total)
	}
	if !last.First.After(t0) || !last.Last.After(last.First) {
		t.Errorf("window %v..%v", last.First, last.Last)
	}
	// Quiet windows: the key is forgotten; the next denial is immediate.
	for i := 0; i < 6; i++ {
		a.Flush(t0.Add(time.Duration(5+i) * time.Second))
	}
	if a.Keys() != 0 {
		t.Errorf("%d keys after 6 idle windows", a.Keys())
	}
	a.Add(denial("c1", "ptrace", 20*time.Second))
	if len(got) != 5 || got[4].Seccomp.Count != 1 || got[4].Seccomp.Total != 1 {
		t.Errorf("after idle: %d events", len(got))
	}
}

func TestAggregatorExpectedProbes(t *testing.T) {
	var got []*event.Event
	a := NewAggregator(Limits{}, func(e *event.Event) { got = append(got, e) })
	for i := 0; i < 1000; i++ {
		d := denial("c1", "clone3", time.Duration(i)*time.Millisecond)
		d.Expected = true
		a.Add(d)
	}
	a.Add(denial("c1", "ptrace", time.Second))
	a.Flush(t0.Add(2 * time.Second))
	if len(got) != 1 || got[0].Seccomp.Syscall != "ptrace" {
		t.Errorf("events %v, want the ptrace denial only", got)
	}
	shown := NewAggregator(Limits{Expected: true}, func(e *event.Event) { got = append(got, e) })
	d := denial("c1", "clone3", 0)
	d.Expected = true
	shown.Add(d)
	if len(got) != 2 || !got[1].Seccomp.Expected {
		t.Errorf("with Expected: %v", got)
	}
}

func TestAggregatorRateLimit(t *testing.T) {
	var got []*event.Event
	a := NewAggregator(Limits{Rate: 1, Burst: 5, Window: time.Second}, func(e *event.Event) { got = append(got, e) })
	// 50 containers each denied once in the same instant: 5 at once, the
	// rest held back, counted, and reported as the bucket refills.
	for i := 0; i < 50; i++ {
		a.Add(denial(fmt.Sprint("c", i), "mount", 0))
	}
	if len(got) != 5 || a.Suppressed != 45 {
		t.Fatalf("%d events, %d suppressed; want 5, 45", len(got), a.Suppressed)
	}
	for s := 1; s <= 50; s++ {
		a.Flush(t0.Add(time.Duration(s) * time.Second))
	}
	if len(got) != 50 {
		t.Errorf("%d events after 50 s, want all 50 reported", len(got))
	}
}

func TestAggregatorMaxKeys(t *testing.T) {
	n := 0
	a := NewAggregator(Limits{MaxKeys: 3, Rate: 1000, Burst: 1000}, func(*event.Event) { n++ })
	for i := 0; i < 10; i++ {
		a.Add(denial("c1", fmt.Sprint("syscall_", i), 0))
	}
	if n != 3 || a.Overflow != 7 || a.Keys() != 3 {
		t.Errorf("events %d overflow %d keys %d", n, a.Overflow, a.Keys())
	}
}
