package shim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
)

// published records what the exit watch forwards.
type published struct {
	mu     sync.Mutex
	topics []string
	events []events.Event
}

func (p *published) Publish(_ context.Context, topic string, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topics = append(p.topics, topic)
	p.events = append(p.events, ev)
	return nil
}

func (p *published) Close() error { return nil }

// earlyExitContainer is a hardened container's bundle: a record whose
// level ran root as 65534 with a state path and a volume, and its spec
// with a termination message mount.
func earlyExitContainer(t *testing.T) (*hardenedContainer, string) {
	t.Helper()
	bundle := t.TempDir()
	msgFile := filepath.Join(t.TempDir(), "termination-log")
	os.WriteFile(msgFile, nil, 0o666)
	s := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 65534, GID: 65534}}, Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=64m"}},
			{Destination: "/srv/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1g"}},
			{Destination: "/etc/config", Type: "bind", Source: "/var/lib/kubelet/pods/x/volumes/cm", Options: []string{"rbind", "ro"}},
			{Destination: "/dev/termination-log", Type: "bind", Source: msgFile, Options: []string{"rbind", "rw"}},
		}}
	writeTestSpec(t, bundle, s)
	rec := &record{Version: recordVersion, Level: "restricted", Mode: policy.Enforce,
		Container: containerFacts{ID: "c", Namespace: "k8s.io", TerminationMessagePath: "/dev/termination-log"},
		Changes:   []spec.Change{{Rule: "user", Field: "process.user.uid", From: "0", To: "65534", Reason: "level restricted runs root containers as its non-root user"}},
		Writable: &writableFacts{Paths: []writablePath{
			{Writable: spec.Writable{Path: "/tmp", Kind: "scratch", Medium: "tmpfs", Size: "64m"}},
			{Writable: spec.Writable{Path: "/var/cache/nginx", Kind: "state", Medium: "tmpfs", Size: "64m", CopyUp: true}},
			{Writable: spec.Writable{Path: "/data", Kind: "volume", Medium: "disk", CopyUp: true}},
		}}}
	return &hardenedContainer{bundle: bundle, rec: rec}, msgFile
}

func TestExplain(t *testing.T) {
	c, _ := earlyExitContainer(t)
	s, _ := readSpec(c.bundle)
	for _, tc := range []struct {
		tail  []string
		cause string
		knobs []string
	}{
		{[]string{`nginx: [emerg] mkdir() "/var/cache/nginx/client_temp" failed (30: Read-only file system)`}, "read-only", []string{"rootfs.writablePaths"}},
		{[]string{"Error: Can't drop privilege as nonroot user"}, "permission", []string{"user.namespace", "capabilities.add"}},
		{[]string{"chown: /data: Operation not permitted"}, "permission", []string{"user.namespace"}},
		{[]string{"PANIC:  could not write to file \"pg_wal/xlogtemp.42\": No space left on device"}, "no-space", []string{"rootfs.tmpfsSize", "rootfs.volumes"}},
		{nil, "", []string{"rootfs.writablePaths", "user.namespace", "rootfs.tmpfsSize"}},
	} {
		x := explain(c.rec, s, 1, 1234*time.Millisecond, tc.tail)
		if x.Cause != tc.cause {
			t.Errorf("explain(%q): cause %q, want %q", tc.tail, x.Cause, tc.cause)
		}
		for _, want := range append(tc.knobs, "exited 1 after 1.23s", "level restricted", "uid 65534 gid 65534", "it asked for uid 0",
			"read-only root", "/var/cache/nginx tmpfs 64m (copy-up)", "/data on disk", "/srv/cache tmpfs 1g") {
			if !strings.Contains(x.Message, want) {
				t.Errorf("explain(%q) = %q, lacks %q", tc.tail, x.Message, want)
			}
		}
		for _, not := range []string{"/proc", "/etc/config", "termination-log"} {
			if strings.Contains(x.Message, not) {
				t.Errorf("explain lists %s as writable: %q", not, x.Message)
			}
		}
		if strings.Contains(x.Message, "\n") {
			t.Errorf("explain = %q: more than one line", x.Message)
		}
	}
	// Root in a user namespace of its own: said, with its host range, and
	// the permission knob no longer offers what it has.
	s.Process.User = specs.User{}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 30, Size: 65536}}
	x := explain(c.rec, s, 1, time.Second, []string{"chown: /data: Operation not permitted"})
	for _, want := range []string{"uid 0 gid 0 in a user namespace of its own (host uids 1073741824-1073807359", "root in a user namespace already", "capabilities.add"} {
		if !strings.Contains(x.Message, want) {
			t.Errorf("explain in a user namespace = %q, lacks %q", x.Message, want)
		}
	}
	if strings.Contains(x.Message, "(user.namespace)") {
		t.Errorf("explain in a user namespace = %q: offers user.namespace", x.Message)
	}
}

// TestExitWatch: an exit with an error soon after the start is explained
// in the record, the termination message file and an event, before the
// exit is forwarded; a clean exit, a late one, a signal and an exec's are
// not.
func TestExitWatch(t *testing.T) {
	pub := &published{}
	w := newExitWatch(pub)
	c, msgFile := earlyExitContainer(t)
	w.lookup = func(id string) *hardenedContainer {
		if id == "c" {
			return c
		}
		return nil
	}
	now := time.Now()
	w.now = func() time.Time { return now }
	ctx := context.Background()
	exit := func(id, execID string, status uint32, after time.Duration) {
		w.Publish(ctx, "/tasks/start", &eventstypes.TaskStart{ContainerID: id, Pid: 1})
		w.Publish(ctx, "/tasks/exit", &eventstypes.TaskExit{ContainerID: id, ID: execID, ExitStatus: status, ExitedAt: timestamppb.New(now.Add(after))})
	}
	exit("c", "c", 0, time.Second)
	exit("c", "c", 1, time.Minute)
	exit("c", "c", 137, time.Second)
	exit("c", "e1", 1, time.Second)
	exit("other", "other", 1, time.Second)
	if len(pub.topics) != 10 || c.rec.EarlyExit != nil {
		t.Fatalf("published %v, early exit %+v: want only the events themselves", pub.topics, c.rec.EarlyExit)
	}
	exit("c", "c", 2, 800*time.Millisecond)
	if n := len(pub.topics); n != 13 || pub.topics[n-2] != TopicEarlyExit || pub.topics[n-1] != "/tasks/exit" {
		t.Fatalf("published %v: want the early exit's event before the exit", pub.topics)
	}
	a := pub.events[len(pub.events)-2].(*anypb.Any)
	var ev specs.Spec
	if err := json.Unmarshal(a.Value, &ev); err != nil || ev.Annotations["hardened.dev/exit"] != "2" || !strings.Contains(ev.Annotations["hardened.dev/message"], "exited 2") {
		t.Errorf("event %s: %v %v", a.TypeUrl, ev.Annotations, err)
	}
	data, _ := os.ReadFile(filepath.Join(c.bundle, RecordFile))
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil || rec.EarlyExit == nil || rec.EarlyExit.Status != 2 {
		t.Errorf("record: %s", data)
	}
	if msg, _ := os.ReadFile(msgFile); !strings.Contains(string(msg), "exited 2 after 800ms") {
		t.Errorf("termination message %q", msg)
	}
	// A termination message the container wrote is its own.
	os.WriteFile(msgFile, []byte("my own message"), 0o666)
	exit("c", "c", 3, time.Second)
	if msg, _ := os.ReadFile(msgFile); string(msg) != "my own message" {
		t.Errorf("termination message %q, want the container's own", msg)
	}
}

func TestLogTail(t *testing.T) {
	if logTail("") != nil || logTail("relative.log") != nil {
		t.Error("logTail of no file")
	}
	file := filepath.Join(t.TempDir(), "0.log")
	var b strings.Builder
	b.WriteString(strings.Repeat("2026-01-01T00:00:00Z stdout F filler line\n", 400))
	b.WriteString("2026-01-01T00:00:01Z stderr F nginx: [emerg] mkdir() failed (30: Read-only file system)\n")
	os.WriteFile(file, []byte(b.String()), 0o640)
	tail := logTail(file)
	if len(tail) != 5 || tail[4] != "nginx: [emerg] mkdir() failed (30: Read-only file system)" {
		t.Errorf("logTail = %q", tail)
	}
}

func TestCRIExitFacts(t *testing.T) {
	md := `{"Version":"v1","Metadata":{"ID":"x","LogPath":"/var/log/pods/ns_p_u/c/0.log","Config":{"annotations":{"io.kubernetes.container.terminationMessagePath":"/dev/termination-log"}}}}`
	logPath, msgPath := criExitFacts([]byte(md))
	if logPath != "/var/log/pods/ns_p_u/c/0.log" || msgPath != "/dev/termination-log" {
		t.Errorf("criExitFacts = %q %q", logPath, msgPath)
	}
	for _, bad := range []string{"", "{", `{"Version":"v2"}`} {
		if a, b := criExitFacts([]byte(bad)); a != "" || b != "" {
			t.Errorf("criExitFacts(%q) = %q %q", bad, a, b)
		}
	}
}
