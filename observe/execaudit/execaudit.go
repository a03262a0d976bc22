// Package execaudit is the shim's share of observing: every exec into a
// hardened container is recorded (argv, the user it finally runs as, tty,
// what the shim changed) as one line in the containerd log and one
// containerd event (topic /hardened/exec), and a level with exec: deny
// refuses it with one line at the exec.
//
// The shim calls, in its Exec:
//
//	if err := execaudit.Check(level, id, execID, requested); err != nil { // before hardening
//		pub.Publish(ctx, execaudit.Refused(c, execID, requested, err)) // the one line, and the event
//		return nil, errgrpc.ToGRPC(err)
//	}
//	... hardened, changes := spec.HardenProcess(...); runc's Exec ...
//	pub.Publish(ctx, execaudit.Record(c, execID, requested, hardened, changes))
//
// with c from ContainerOf and pub a Publisher made once from the task
// service's shim.Publisher (Publish logs the line itself).
package execaudit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
)

// Check refuses the exec when the container's level says exec: deny. The
// error is one line: what was refused, the rule, the knob that allows it.
func Check(level *profiles.Level, id, execID string, requested *specs.Process) error {
	if level == nil || level.Exec != profiles.ExecDeny {
		return nil
	}
	var args []string
	if requested != nil {
		args = requested.Args
	}
	return fmt.Errorf("%w: exec %s %q into container %s refused by level %s: rule exec: the level says exec: deny; "+
		"fix: use a level with exec: allow for this workload in the node policy (exec probes need it too)",
		errdefs.ErrFailedPrecondition, execID, args, id, level.Name)
}

// CRI's annotations of a container's spec.
const (
	annPodNamespace = "io.kubernetes.cri.sandbox-namespace"
	annPod          = "io.kubernetes.cri.sandbox-name"
	annName         = "io.kubernetes.cri.container-name"
)

// ContainerOf names a container for its events: containerd namespace and
// id, level, and the pod where CRI created it (from the annotations of its
// spec; any containerd client can set those, so they name, they prove
// nothing).
func ContainerOf(namespace, id, level string, annotations map[string]string) event.Container {
	return event.Container{Namespace: namespace, ID: id, Level: level,
		PodNamespace: annotations[annPodNamespace], Pod: annotations[annPod], Name: annotations[annName]}
}

// Record is the event of an exec the shim let through: requested is the
// process containerd sent, hardened what the shim gives runc (the same in
// audit mode), changes what spec.HardenProcess reported.
func Record(c event.Container, execID string, requested, hardened *specs.Process, changes []spec.Change) *event.Event {
	x := &event.Exec{ExecID: execID}
	if requested != nil {
		x.RequestedUser = user(requested.User)
	}
	if hardened == nil {
		hardened = requested
	}
	if hardened != nil {
		x.Args, x.Cwd, x.Terminal, x.User = hardened.Args, hardened.Cwd, hardened.Terminal, user(hardened.User)
		if hardened.Capabilities != nil {
			x.Capabilities = hardened.Capabilities.Effective
			if x.Capabilities == nil {
				x.Capabilities = []string{}
			}
		}
	}
	for _, ch := range changes {
		if !ch.Note {
			x.Changes = append(x.Changes, fmt.Sprintf("%s: %s -> %s", ch.Field, short(ch.From), short(ch.To)))
		}
	}
	return &event.Event{Time: time.Now(), Container: c, Exec: x}
}

// Refused is the event of an exec the shim refused with err.
func Refused(c event.Container, execID string, requested *specs.Process, err error) *event.Event {
	e := Record(c, execID, requested, nil, nil)
	e.Exec.Refused, e.Exec.Reason = true, err.Error()
	return e
}

// short keeps a long list value (a capability set) to its first items and
// its length, so that an exec's line stays a line.
func short(v string) string {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return v
	}
	items := strings.Fields(v[1 : len(v)-1])
	if len(items) <= 3 {
		return v
	}
	return fmt.Sprintf("[%s ... %d in all]", strings.Join(items[:2], " "), len(items))
}

func user(u specs.User) event.User {
	return event.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
}

// queueSize bounds the events waiting for containerd; more are dropped (and
// logged): an exec never waits for its event.
const queueSize = 256

// Publisher sends events to containerd's event stream in the background,
// in order, without holding up the exec that made them.
type Publisher struct {
	pub events.Publisher

	once  sync.Once
	queue chan queued
}

type queued struct {
	ctx context.Context
	ev  *event.Event
}

// NewPublisher wraps the task service's publisher (shim.Publisher).
func NewPublisher(pub events.Publisher) *Publisher {
	return &Publisher{pub: pub, queue: make(chan queued, queueSize)}
}

// Publish logs the event as one line and queues it for containerd. ctx
// must carry the container's namespace (an Exec request's does).
func (p *Publisher) Publish(ctx context.Context, e *event.Event) {
	entry := log.G(ctx).WithField("id", e.Container.ID)
	if e.Exec != nil {
		entry = entry.WithField("exec", e.Exec.ExecID)
	}
	if e.Exec != nil && e.Exec.Refused {
		entry.Warn("hardened: " + e.String())
	} else {
		entry.Info("hardened: " + e.String())
	}
	if p == nil || p.pub == nil {
		return
	}
	p.once.Do(func() { go p.run() })
	select {
	case p.queue <- queued{context.WithoutCancel(ctx), e}:
	default:
		entry.Warn("hardened: event queue full, event not published")
	}
}

func (p *Publisher) run() {
	for q := range p.queue {
		payload, err := q.ev.Marshal()
		if err == nil {
			err = p.pub.Publish(q.ctx, q.ev.Topic(), payload)
		}
		if err != nil {
			log.G(q.ctx).WithError(err).WithField("id", q.ev.Container.ID).Warn("hardened: publish event")
		}
	}
}
