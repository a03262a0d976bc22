package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// SpecTypeURL is the type URL under which containerd's clients (ctr
// included) register the OCI runtime spec: an event's payload carries it.
const SpecTypeURL = "types.containerd.io/opencontainers/runtime-spec/" + "1" + "/Spec"

// Annotation keys of the payload. The Kubernetes ones are CRI's label keys.
const (
	keyEvent         = "hardened.dev/event"
	keyNamespace     = "hardened.dev/namespace"
	keyContainer     = "hardened.dev/container"
	keyLevel         = "hardened.dev/level"
	keyImage         = "hardened.dev/image"
	keyPodNamespace  = "io.kubernetes.pod.namespace"
	keyPod           = "io.kubernetes.pod.name"
	keyName          = "io.kubernetes.container.name"
	keyTime          = "hardened.dev/time"
	keyExecID        = "hardened.dev/exec-id"
	keyDecision      = "hardened.dev/decision"
	keyReason        = "hardened.dev/reason"
	keyRequestedUser = "hardened.dev/requested-user"
	keyChanges       = "hardened.dev/changes"
	keySyscall       = "hardened.dev/syscall"
	keyArch          = "hardened.dev/arch"
	keyAction        = "hardened.dev/action"
	keyErrno         = "hardened.dev/errno"
	keyExpected      = "hardened.dev/expected"
	keyCount         = "hardened.dev/count"
	keyTotal         = "hardened.dev/total"
	keyFirst         = "hardened.dev/first"
	keyLast          = "hardened.dev/last"
	keyPID           = "hardened.dev/pid"
	keyComm          = "hardened.dev/comm"
	keyExe           = "hardened.dev/exe"
	keyUID           = "hardened.dev/uid"
)

// Spec is the event as the OCI runtime spec fragment its payload holds.
func (e *Event) Spec() *specs.Spec {
	a := map[string]string{
		keyNamespace: e.Container.Namespace,
		keyContainer: e.Container.ID,
		keyTime:      e.Time.UTC().Format(time.RFC3339Nano),
	}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(keyLevel, e.Container.Level)
	set(keyImage, e.Container.Image)
	set(keyPodNamespace, e.Container.PodNamespace)
	set(keyPod, e.Container.Pod)
	set(keyName, e.Container.Name)
	s := &specs.Spec{Version: specs.Version, Annotations: a}
	switch {
	case e.Exec != nil:
		x := e.Exec
		a[keyEvent] = "exec"
		a[keyExecID] = x.ExecID
		a[keyDecision] = "allowed"
		if x.Refused {
			a[keyDecision] = "refused"
		}
		set(keyReason, x.Reason)
		a[keyRequestedUser] = x.RequestedUser.String()
		set(keyChanges, strings.Join(x.Changes, "\n"))
		s.Process = &specs.Process{Terminal: x.Terminal, Args: x.Args, Cwd: x.Cwd,
			User: specs.User{UID: x.User.UID, GID: x.User.GID, AdditionalGids: x.User.AdditionalGids}}
		if x.Capabilities != nil {
			s.Process.Capabilities = &specs.LinuxCapabilities{Effective: x.Capabilities}
		}
	case e.Seccomp != nil:
		c := e.Seccomp
		a[keyEvent] = "seccomp"
		a[keySyscall] = c.Syscall
		set(keyArch, c.Arch)
		a[keyAction] = c.Action
		set(keyErrno, c.Errno)
		a[keyExpected] = strconv.FormatBool(c.Expected)
		a[keyCount] = strconv.FormatUint(c.Count, 10)
		a[keyTotal] = strconv.FormatUint(c.Total, 10)
		a[keyFirst] = c.First.UTC().Format(time.RFC3339Nano)
		a[keyLast] = c.Last.UTC().Format(time.RFC3339Nano)
		a[keyPID] = strconv.Itoa(c.PID)
		set(keyComm, c.Comm)
		set(keyExe, c.Exe)
		a[keyUID] = strconv.FormatUint(uint64(c.UID), 10)
	}
	return s
}

// Marshal is the event as the payload of a containerd event.
func (e *Event) Marshal() (*anypb.Any, error) {
	if (e.Exec == nil) == (e.Seccomp == nil) {
		return nil, errors.New("event: want exactly one of exec and seccomp")
	}
	data, err := json.Marshal(e.Spec())
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: SpecTypeURL, Value: data}, nil
}

// Unmarshal reads an event back from a containerd event's payload. It is
// an error for a payload that is not one of hardened's events.
func Unmarshal(typeURL string, value []byte) (*Event, error) {
	if typeURL != SpecTypeURL {
		return nil, fmt.Errorf("event: payload type %q is not %s", typeURL, SpecTypeURL)
	}
	var s specs.Spec
	if err := json.Unmarshal(value, &s); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	return FromSpec(&s)
}

// FromSpec reads an event from the spec fragment Spec made.
func FromSpec(s *specs.Spec) (*Event, error) {
	a := s.Annotations
	var errs []error
	num := func(k string) uint64 {
		n, err := strconv.ParseUint(a[k], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return n
	}
	stamp := func(k string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, a[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return t
	}
	e := &Event{Time: stamp(keyTime), Container: Container{Namespace: a[keyNamespace], ID: a[keyContainer],
		PodNamespace: a[keyPodNamespace], Pod: a[keyPod], Name: a[keyName], Level: a[keyLevel], Image: a[keyImage]}}
	switch a[keyEvent] {
	case "exec":
		x := &Exec{ExecID: a[keyExecID], Refused: a[keyDecision] == "refused", Reason: a[keyReason]}
		if c := a[keyChanges]; c != "" {
			x.Changes = strings.Split(c, "\n")
		}
		var err error
		if x.RequestedUser, err = ParseUser(a[keyRequestedUser]); err != nil {
			errs = append(errs, err)
		}
		if p := s.Process; p != nil {
			x.Args, x.Cwd, x.Terminal = p.Args, p.Cwd, p.Terminal
			x.User = User{UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids}
			if p.Capabilities != nil {
				x.Capabilities = p.Capabilities.Effective
			}
		}
		e.Exec = x
	case "seccomp":
		c := &Seccomp{Syscall: a[keySyscall], Arch: a[keyArch], Action: a[keyAction], Errno: a[keyErrno],
			Expected: a[keyExpected] == "true", Count: num(keyCount), Total: num(keyTotal),
			First: stamp(keyFirst), Last: stamp(keyLast), Comm: a[keyComm], Exe: a[keyExe], UID: uint32(num(keyUID))}
		c.PID = int(num(keyPID))
		e.Seccomp = c
	default:
		return nil, fmt.Errorf("event: %s is %q, not exec or seccomp", keyEvent, a[keyEvent])
	}
	if e.Container.ID == "" {
		errs = append(errs, fmt.Errorf("%s missing", keyContainer))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("event: %w", errors.Join(errs...))
	}
	return e, nil
}
