package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)

func samples() []*Event {
	pod := Container{Namespace: "k8s.io", ID: "abc", PodNamespace: "shop", Pod: "web-1", Name: "app", Level: "restricted", Image: "registry.example/shop/web:1"}
	return []*Event{
		{Time: t0, Container: pod, Exec: &Exec{ExecID: "e1", Args: []string{"sh", "-c", "id; echo 'x'"}, Cwd: "/",
			User: User{UID: 65534, GID: 65534, AdditionalGids: []uint32{65534}}, RequestedUser: User{},
			Capabilities: []string{}, Changes: []string{"process.user.uid: 0 -> 65534", "process.noNewPrivileges: false -> true"}}},
		{Time: t0, Container: Container{Namespace: "default", ID: "t1", Level: "locked"}, Exec: &Exec{ExecID: "e2",
			Args: []string{"sh"}, Terminal: true, Refused: true, Reason: "level locked says exec: deny"}},
		{Time: t0, Container: pod, Seccomp: &Seccomp{Syscall: "unshare", Arch: "SCMP_ARCH_X86_64", Action: "errno", Errno: "EPERM",
			Count: 3, Total: 10, First: t0, Last: t0.Add(time.Second), PID: 42, Comm: "unshare", Exe: "/bin/busybox", UID: 65534}},
		{Time: t0, Container: pod, Seccomp: &Seccomp{Syscall: "clone3", Action: "errno", Errno: "ENOSYS", Expected: true,
			Count: 1, Total: 1, First: t0, Last: t0, PID: 7}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, e := range samples() {
		a, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if a.TypeUrl != SpecTypeURL {
			t.Errorf("type URL %s", a.TypeUrl)
		}
		got, err := Unmarshal(a.TypeUrl, a.Value)
		if err != nil {
			t.Fatalf("Unmarshal(%s) = %v", a.Value, err)
		}
		if d := cmp.Diff(e, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

// What a client that knows nothing of hardened sees (ctr events decodes the
// payload as a runtime spec and prints it as JSON).
func TestReadableAsASpec(t *testing.T) {
	a, _ := samples()[0].Marshal()
	var s specs.Spec
	if err := json.Unmarshal(a.Value, &s); err != nil {
		t.Fatal(err)
	}
	if s.Process == nil || s.Process.Env != nil || s.Process.Args[0] != "sh" || s.Process.User.UID != 65534 ||
		s.Annotations["hardened.dev/event"] != "exec" || s.Annotations["io.kubernetes.pod.name"] != "web-1" {
		t.Errorf("spec view: %+v", s)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	if _, err := Unmarshal("types.containerd.io/other", []byte("{}")); err == nil {
		t.Error("other type accepted")
	}
	for _, body := range []string{`nope`, `{"annotations":{}}`, `{"annotations":{"hardened.dev/event":"seccomp","hardened.dev/container":"x"}}`,
		`{"annotations":{"hardened.dev/event":"exec","hardened.dev/time":"2026-01-01T00:00:00Z","hardened.dev/requested-user":"0:0"}}`} {
		if e, err := Unmarshal(SpecTypeURL, []byte(body)); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", body, e)
		}
	}
	if _, err := (&Event{}).Marshal(); err == nil {
		t.Error("Marshal of an empty event")
	}
}

func TestString(t *testing.T) {
	ev := samples()
	for i, want := range []string{
		`exec e1 into k8s.io/abc (pod shop/web-1, container app): ["sh" "-c" "id; echo 'x'"] as 65534:65534+65534 (asked 0:0), no tty, level restricted; changed: process.user.uid: 0 -> 65534; process.noNewPrivileges: false -> true`,
		`exec e2 into default/t1 refused: ["sh"]: level locked says exec: deny`,
		`seccomp: unshare denied (EPERM) in k8s.io/abc (pod shop/web-1, container app), level restricted: pid 42 unshare (/bin/busybox), 3 times in 1s (10 in all)`,
		`seccomp: clone3 denied (ENOSYS), an expected probe in k8s.io/abc (pod shop/web-1, container app), level restricted: pid 7 `,
	} {
		if got := ev[i].String(); got != want {
			t.Errorf("String() =\n%s\nwant\n%s", got, want)
		}
	}
	trial := &Event{Container: Container{Namespace: "n", ID: "c"}, Seccomp: &Seccomp{Syscall: "ptrace", Action: "log", Count: 1, Total: 1, PID: 1, Comm: "x"}}
	if s := trial.String(); !strings.Contains(s, "would be denied (trial mode, it ran)") {
		t.Errorf("trial: %s", s)
	}
	kill := &Event{Container: Container{Namespace: "n", ID: "c"}, Seccomp: &Seccomp{Syscall: "ptrace", Action: "kill_process", Count: 1, Total: 1}}
	if s := kill.String(); !strings.Contains(s, "denied (kill_process)") || kill.Topic() != TopicSeccomp || !kill.Seccomp.Denied() {
		t.Errorf("kill: %s", s)
	}
	if ev[0].Topic() != TopicExec {
		t.Error("exec topic")
	}
}

func TestParseUser(t *testing.T) {
	for _, s := range []string{"0:0", "65534:65534+1,2"} {
		u, err := ParseUser(s)
		if err != nil || u.String() != s {
			t.Errorf("ParseUser(%q) = %v, %v", s, u, err)
		}
	}
	for _, s := range []string{"", "0", "x:0", "0:x", "0:0+x"} {
		if _, err := ParseUser(s); err == nil {
			t.Errorf("ParseUser(%q) accepted", s)
		}
	}
}
