package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/observe/execaudit"
)

// RuntimeType is the runtime type of hardened containers.
const RuntimeType = "io.containerd.hardened.v2"

// Containerd keeps a Table of the hardened containers of one containerd:
// those running when it starts, then through containerd's events (task
// create, start, exec started, delete). It also passes on the exec events
// the shims publish.
type Containerd struct {
	Client *containerd.Client
	Table  *Table
	// Runtime is the runtime type whose containers are hardened (default
	// RuntimeType).
	Runtime string
	// State is containerd's state directory, where the bundles of the
	// containers that ran before the watcher are (default /run/containerd;
	// the task events name the bundles of the later ones).
	State string
	// ProcRoot is the host's /proc (default /proc).
	ProcRoot string
	// OnExec gets each exec event a shim publishes.
	OnExec func(*event.Event)
	// OnError gets what goes wrong with one container or event; the
	// watcher carries on.
	OnError func(error)
}

// Run subscribes to containerd's events, puts the running hardened
// containers into the table, calls ready, and follows the events until ctx
// ends or the subscription fails.
func (w *Containerd) Run(ctx context.Context, ready func()) error {
	if w.Runtime == "" {
		w.Runtime = RuntimeType
	}
	if w.State == "" {
		w.State = "/run/containerd"
	}
	if w.ProcRoot == "" {
		w.ProcRoot = "/proc"
	}
	if w.OnError == nil {
		w.OnError = func(error) {}
	}
	// Subscribe first: a container that starts while the others are read
	// is then seen twice, never missed.
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errs := w.Client.EventService().Subscribe(subCtx, `topic~="^/tasks/"`, `topic=="/containers/delete"`, `topic=="`+event.TopicExec+`"`)
	if err := w.sync(ctx); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("containerd events: %w", err)
		case e := <-evs:
			if e == nil || e.Event == nil {
				continue
			}
			if err := w.handle(ctx, e.Namespace, e.Topic, e.Event); err != nil {
				w.OnError(err)
			}
		}
	}
}

// sync puts the hardened containers that run now into the table, with
// every pid of each (init, execs and their children).
func (w *Containerd) sync(ctx context.Context) error {
	nss, err := w.Client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list containerd namespaces: %w", err)
	}
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := w.Client.ContainerService().List(nctx)
		if err != nil {
			return fmt.Errorf("list the containers of namespace %s: %w", ns, err)
		}
		for _, c := range cs {
			if c.Runtime.Name != w.Runtime {
				continue
			}
			t, err := w.Client.TaskService().Get(nctx, &tasks.GetRequest{ContainerID: c.ID})
			if errdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				w.OnError(fmt.Errorf("container %s/%s: %w", ns, c.ID, err))
				continue
			}
			bundle := filepath.Join(w.State, "io.containerd.runtime.v2.task", ns, c.ID)
			w.put(ns, c.ID, c.Image, bundle, c.Labels, int(t.Process.Pid))
			pids, err := w.Client.TaskService().ListPids(nctx, &tasks.ListPidsRequest{ContainerID: c.ID})
			if err != nil {
				w.OnError(fmt.Errorf("container %s/%s: pids: %w", ns, c.ID, err))
				continue
			}
			for _, p := range pids.Processes {
				w.Table.AddPid(ns, c.ID, int(p.Pid))
			}
		}
	}
	return nil
}

func (w *Containerd) handle(ctx context.Context, ns, topic string, payload typeurl.Any) error {
	if topic == event.TopicExec {
		e, err := event.Unmarshal(payload.GetTypeUrl(), payload.GetValue())
		if err != nil {
			return err
		}
		if w.OnExec != nil {
			w.OnExec(e)
		}
		return nil
	}
	v, err := typeurl.UnmarshalAny(payload)
	if err != nil {
		return nil // an event type this binary does not know: not ours
	}
	switch e := v.(type) {
	case *eventtypes.TaskCreate:
		return w.created(ctx, ns, e.ContainerID, e.Bundle, int(e.Pid))
	case *eventtypes.TaskStart:
		w.Table.AddPid(ns, e.ContainerID, int(e.Pid))
	case *eventtypes.TaskExecStarted:
		w.Table.AddPid(ns, e.ContainerID, int(e.Pid))
	case *eventtypes.TaskDelete:
		if e.ID == "" || e.ID == e.ContainerID {
			w.Table.Delete(ns, e.ContainerID, time.Now())
		}
	case *eventtypes.ContainerDelete:
		w.Table.Delete(ns, e.ID, time.Now())
	}
	return nil
}

// created adds a container whose task was just created, if it is hardened:
// if the shim left its record in the bundle. No call to containerd: this
// runs while the container starts, and containerd is on that path.
func (w *Containerd) created(ctx context.Context, ns, id, bundle string, pid int) error {
	if _, err := os.Stat(filepath.Join(bundle, recordFile)); err != nil {
		return nil // not a hardened container (or gone already)
	}
	w.put(ns, id, "", bundle, nil, pid)
	return nil
}

// put adds a container with what its labels, its bundle's record and its
// init process say.
func (w *Containerd) put(ns, id, image, bundle string, labels map[string]string, pid int) {
	c := &Container{Container: event.Container{Namespace: ns, ID: id, Image: image,
		PodNamespace: labels["io.kubernetes.pod.namespace"], Pod: labels["io.kubernetes.pod.name"], Name: labels["io.kubernetes.container.name"]}}
	annotations, profile, err := readBundleSpec(bundle)
	if err != nil {
		w.OnError(fmt.Errorf("container %s/%s: %w", ns, id, err))
	}
	c.Seccomp = profile
	level, recImage, err := readRecord(bundle)
	if err != nil {
		w.OnError(fmt.Errorf("container %s/%s: %w", ns, id, err))
	}
	c.Level = level
	if c.Image == "" {
		c.Image = recImage
	}
	// CRI's own annotations name the pod (the labels above are the
	// kubelet's, which other CRI clients need not set).
	if named := execaudit.ContainerOf(ns, id, level, annotations); named.Pod != "" {
		c.PodNamespace, c.Pod, c.Name = named.PodNamespace, named.Pod, named.Name
	}
	if pid > 0 {
		if lines, err := cgroupLines(w.ProcRoot, pid); err == nil {
			c.Cgroup = containerCgroup(lines)
		}
	}
	w.Table.Put(c)
	w.Table.AddPid(ns, id, pid)
}

// recordFile is the record the shim leaves in the bundle of every hardened
// container (shim.RecordFile).
const recordFile = "hardened.json"

// readRecord reads the level and the image from the shim's record. It
// takes the image as a name or as an object with one (the record's format
// has had both).
func readRecord(bundle string) (level, image string, err error) {
	var rec struct {
		Level string          `json:"level"`
		Image json.RawMessage `json:"image"`
	}
	data, err := os.ReadFile(filepath.Join(bundle, recordFile))
	if err != nil {
		return "", "", err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", "", fmt.Errorf("%s: %w", recordFile, err)
	}
	if json.Unmarshal(rec.Image, &image) != nil {
		var named struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(rec.Image, &named) == nil {
			image = named.Name
		}
	}
	return rec.Level, image, nil
}
