package observe

import (
	"context"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/hardened-runtime/hardened/observe/audit"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/observe/proctree"
)

// NodeConfig configures a Node.
type NodeConfig struct {
	// Address is containerd's socket. Empty: no containerd, the caller
	// fills Table.
	Address string
	// State is containerd's state directory (see Containerd.State).
	State string
	// ProcRoot is the host's /proc (default /proc).
	ProcRoot string
	// Table, when set, is used instead of a new one.
	Table *Table
	// Limits bound the events (see Limits).
	Limits Limits
	// Unattributed reports the records of processes in no hardened
	// container too.
	Unattributed bool
	// Retry: see Config.Retry.
	Retry time.Duration
	// Publish puts the seccomp events into containerd's event stream
	// (topic /hardened/seccomp, in the container's namespace).
	Publish bool
	// Metrics counts everything in Prometheus metrics (Node.Metrics).
	Metrics bool
	// Emit gets every event: the seccomp events the observer makes and the
	// exec events the shims publish. Called from one goroutine at a time.
	Emit func(*event.Event)
	// Logf gets what goes wrong on the way (containerd gone, an event that
	// could not be published). Default: nothing.
	Logf func(format string, args ...any)
}

// Node is a node's observer: the kernel's records, containerd's hardened
// containers, the events, the metrics.
type Node struct {
	cfg      NodeConfig
	src      audit.Source
	tree     *proctree.Tree
	table    *Table
	obs      *Observer
	metrics  *Metrics
	ready    chan struct{}
	readyOne sync.Once

	// emitMu serialises Emit between the observer and the exec events.
	emitMu sync.Mutex
	// clientMu guards client, the connection of the moment.
	clientMu sync.Mutex
	client   *containerd.Client
	outbox   chan *event.Event
}

// NewNode opens the kernel's records (netlink, else the kernel log) and the
// process events; without the latter (no CAP_NET_ADMIN) exited processes
// are attributed only while /proc has them, and Logf says so.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Emit == nil {
		cfg.Emit = func(*event.Event) {}
	}
	n := &Node{cfg: cfg, table: cfg.Table, ready: make(chan struct{}), outbox: make(chan *event.Event, 1024)}
	if n.table == nil {
		n.table = NewTable()
	}
	src, err := audit.Open()
	if err != nil {
		return nil, err
	}
	if src.Name() == "kmsg" {
		cfg.Logf("reading seccomp records from the kernel log: the audit multicast group is not available (CAP_AUDIT_READ, the host's network namespace); the kernel log has them only while no auditd runs, 10 every 5 s")
	}
	n.src = src
	tree, err := proctree.Open(cfg.ProcRoot, 2*time.Minute)
	if err != nil {
		cfg.Logf("%v: denials of processes that exited before their record was read are attributed by /proc only", err)
	} else {
		n.tree = tree
	}
	if cfg.Metrics {
		n.metrics = NewMetrics(func() Stats { return n.Stats() })
	}
	n.obs = New(Config{Source: src, Tree: n.tree, Table: n.table, ProcRoot: cfg.ProcRoot, Limits: cfg.Limits,
		Unattributed: cfg.Unattributed, Retry: cfg.Retry, Metrics: n.metrics, Emit: n.seccompEvent})
	if cfg.Address == "" {
		n.readyOne.Do(func() { close(n.ready) })
	}
	return n, nil
}

// Table is the node's container table.
func (n *Node) Table() *Table { return n.table }

// Metrics is nil unless NodeConfig.Metrics.
func (n *Node) Metrics() *Metrics { return n.metrics }

// Source names where the records come from (netlink, kmsg).
func (n *Node) Source() string { return n.src.Name() }

// Stats are the observer's counters.
func (n *Node) Stats() Stats { return n.obs.Stats() }

// Ready is closed once the containers running at the start are in the
// table (at once without containerd).
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Run observes until ctx ends; it returns an error only when the kernel's
// records cannot be read any more. containerd may come and go meanwhile.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if n.cfg.Address != "" {
		wg.Add(1)
		go func() { defer wg.Done(); n.followContainerd(ctx) }()
		if n.cfg.Publish {
			wg.Add(1)
			go func() { defer wg.Done(); n.publish(ctx) }()
		}
	}
	err := n.obs.Run(ctx)
	cancel()
	wg.Wait()
	if n.tree != nil {
		n.tree.Close()
	}
	return err
}

func (n *Node) emit(e *event.Event) {
	n.emitMu.Lock()
	defer n.emitMu.Unlock()
	n.cfg.Emit(e)
}

func (n *Node) seccompEvent(e *event.Event) {
	n.emit(e)
	if n.cfg.Publish && e.Container.ID != "" {
		select {
		case n.outbox <- e:
		default:
			n.cfg.Logf("event not published, the queue to containerd is full: %s", e)
		}
	}
}

func (n *Node) execEvent(e *event.Event) {
	if n.metrics != nil {
		n.metrics.exec(e)
	}
	n.emit(e)
}

// followContainerd keeps the table in step with containerd, reconnecting
// when containerd restarts.
func (n *Node) followContainerd(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		client, err := containerd.New(n.cfg.Address, containerd.WithTimeout(10*time.Second))
		if err == nil {
			n.clientMu.Lock()
			n.client = client
			n.clientMu.Unlock()
			w := &Containerd{Client: client, Table: n.table, State: n.cfg.State, ProcRoot: n.cfg.ProcRoot, OnExec: n.execEvent,
				OnError: func(err error) { n.cfg.Logf("%v", err) }}
			err = w.Run(ctx, func() {
				backoff = time.Second
				n.readyOne.Do(func() { close(n.ready) })
			})
			n.clientMu.Lock()
			n.client = nil
			n.clientMu.Unlock()
			client.Close()
		}
		if ctx.Err() != nil {
			return
		}
		n.cfg.Logf("containerd at %s: %v; trying again in %s", n.cfg.Address, err, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// publish sends the seccomp events to containerd, one at a time.
func (n *Node) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.outbox:
			n.clientMu.Lock()
			client := n.client
			n.clientMu.Unlock()
			if client == nil {
				n.cfg.Logf("event not published, containerd is not connected: %s", e)
				continue
			}
			payload, err := e.Marshal()
			if err == nil {
				pctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, e.Container.Namespace), 5*time.Second)
				err = client.EventService().Publish(pctx, e.Topic(), payload)
				cancel()
			}
			if err != nil {
				n.cfg.Logf("publish %s: %v", fmt.Sprint(e), err)
			}
		}
	}
}
