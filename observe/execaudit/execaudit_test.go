package execaudit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
)

func TestCheck(t *testing.T) {
	r, _ := profiles.Builtin(profiles.Restricted)
	p := &specs.Process{Args: []string{"sh"}}
	if err := Check(r, "c1", "e1", p); err != nil {
		t.Errorf("restricted: %v", err)
	}
	if err := Check(nil, "c1", "e1", p); err != nil {
		t.Errorf("no level: %v", err)
	}
	locked := r.Clone()
	locked.Name, locked.Exec = "locked", profiles.ExecDeny
	err := Check(locked, "c1", "e1", p)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Check = %v, want failed precondition", err)
	}
	for _, want := range []string{`exec e1 ["sh"] into container c1 refused by level locked`, "rule exec", "exec: deny", "fix: use a level with exec: allow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %q, want %q in it", err, want)
		}
	}
}

func TestRecord(t *testing.T) {
	r, _ := profiles.Builtin(profiles.Restricted)
	container := &specs.Spec{Version: specs.Version, Process: &specs.Process{User: specs.User{UID: 65534, GID: 65534}, Args: []string{"sleep", "1"}, Cwd: "/"},
		Root: &specs.Root{Path: "rootfs", Readonly: true}, Linux: &specs.Linux{}}
	requested := &specs.Process{Args: []string{"id"}, Cwd: "/", Terminal: true, User: specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}},
		Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_CHOWN", "CAP_KILL"}}}
	hardened, changes, err := spec.HardenProcess(requested, container, r, spec.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	c := ContainerOf("k8s.io", "abc", "restricted", map[string]string{annPodNamespace: "shop", annPod: "web", annName: "app"})
	e := Record(c, "e1", requested, hardened, changes)
	x := e.Exec
	if x.RequestedUser.UID != 0 || x.User.UID == 0 || !x.Terminal || x.Args[0] != "id" || len(x.Capabilities) != 0 || x.Capabilities == nil || len(x.Changes) == 0 {
		t.Errorf("Record = %+v", x)
	}
	if e.Container.Pod != "web" || e.Container.PodNamespace != "shop" || e.Container.Name != "app" {
		t.Errorf("container %+v", e.Container)
	}
	if !strings.Contains(e.String(), "as 65534:65534 (asked 0:0+0,10), tty") {
		t.Errorf("String() = %s", e.String())
	}
	if got := strings.Join(x.Changes, "\n"); !strings.Contains(got, "[CAP_CHOWN CAP_KILL] -> []") {
		t.Errorf("changes %q", got)
	}
	if got := short("[A B C D E]"); got != "[A B ... 5 in all]" {
		t.Errorf("short = %q", got)
	}
	ref := Refused(c, "e2", requested, errors.New("no"))
	if !ref.Exec.Refused || ref.Exec.Reason != "no" || ref.Exec.User.UID != 0 {
		t.Errorf("Refused = %+v", ref.Exec)
	}
}

type recorder struct {
	mu  sync.Mutex
	got []string
	err error
}

func (r *recorder) Publish(ctx context.Context, topic string, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := ev.(*anypb.Any)
	e, err := event.Unmarshal(a.TypeUrl, a.Value)
	if err != nil {
		return err
	}
	r.got = append(r.got, topic+" "+e.Exec.ExecID)
	return r.err
}

func TestPublisher(t *testing.T) {
	rec := &recorder{}
	p := NewPublisher(rec)
	c := event.Container{Namespace: "default", ID: "c1"}
	for _, id := range []string{"a", "b"} {
		p.Publish(context.Background(), Record(c, id, &specs.Process{Args: []string{"true"}}, nil, nil))
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec.mu.Lock()
		n := len(rec.got)
		rec.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if strings.Join(rec.got, ",") != "/hardened/exec a,/hardened/exec b" {
		t.Errorf("published %v", rec.got)
	}
	var nilPub *Publisher
	nilPub.Publish(context.Background(), Record(c, "x", nil, nil, nil)) // logs only
}
