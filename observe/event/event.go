// Package event is what hardened reports while containers run: an exec into
// a hardened container (published by the shim) and a seccomp decision of a
// container's filter (published by the node's observer). Both go into
// containerd's event stream, so `ctr events` shows them next to containerd's
// own, and `hardenctl events` and the observer's metrics read them back.
//
// The payload is JSON with the type URL of an OCI runtime spec, which every
// containerd client (ctr included) can decode: the exec'd process is the
// spec's process (environment left out), and every fact is an annotation
// hardened.dev/*. A reader that does not know hardened still sees it all.
//
// The package is light on purpose: the shim links it.
package event

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Topics of the events in containerd's event stream.
const (
	TopicExec    = "/hardened/exec"
	TopicSeccomp = "/hardened/seccomp"
)

// Container says which container an event is about.
type Container struct {
	// Namespace and ID are the containerd namespace and container id.
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	// PodNamespace, Pod and Name are the Kubernetes namespace, pod and
	// container name, where CRI created the container (from its labels).
	PodNamespace string `json:"podNamespace,omitempty"`
	Pod          string `json:"pod,omitempty"`
	Name         string `json:"name,omitempty"`
	// Level is the hardening level the container runs under, where known.
	Level string `json:"level,omitempty"`
	// Image is the image the container runs, as containerd records it.
	Image string `json:"image,omitempty"`
}

// String is "namespace/id", with the pod where there is one.
func (c Container) String() string {
	if c.ID == "" {
		return "no hardened container"
	}
	s := c.Namespace + "/" + c.ID
	if c.Pod != "" {
		s += fmt.Sprintf(" (pod %s/%s, container %s)", c.PodNamespace, c.Pod, c.Name)
	}
	return s
}

// User is a process's user.
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

func (u User) String() string {
	s := strconv.FormatUint(uint64(u.UID), 10) + ":" + strconv.FormatUint(uint64(u.GID), 10)
	for i, g := range u.AdditionalGids {
		if i == 0 {
			s += "+"
		} else {
			s += ","
		}
		s += strconv.FormatUint(uint64(g), 10)
	}
	return s
}

// ParseUser reads what User.String wrote.
func ParseUser(s string) (User, error) {
	var u User
	ids, extra, _ := strings.Cut(s, "+")
	uid, gid, ok := strings.Cut(ids, ":")
	if !ok {
		return u, fmt.Errorf("user %q: want uid:gid", s)
	}
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		return u, fmt.Errorf("user %q: %w", s, err)
	}
	u.UID = uint32(n)
	if n, err = strconv.ParseUint(gid, 10, 32); err != nil {
		return u, fmt.Errorf("user %q: %w", s, err)
	}
	u.GID = uint32(n)
	if extra != "" {
		for _, g := range strings.Split(extra, ",") {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return u, fmt.Errorf("user %q: %w", s, err)
			}
			u.AdditionalGids = append(u.AdditionalGids, uint32(n))
		}
	}
	return u, nil
}

// Exec is an exec into a hardened container: what was asked, what ran.
type Exec struct {
	// ExecID is containerd's id of the exec'd process.
	ExecID string `json:"execId"`
	// Args, Cwd and Terminal are the process as it ran (or was refused).
	Args     []string `json:"args"`
	Cwd      string   `json:"cwd,omitempty"`
	Terminal bool     `json:"terminal"`
	// User is what the process ran as, after hardening; RequestedUser what
	// the client asked for (containerd builds it from the container's
	// stored, unhardened spec: usually root).
	User          User `json:"user"`
	RequestedUser User `json:"requestedUser"`
	// Capabilities is the effective set it ran with.
	Capabilities []string `json:"capabilities,omitempty"`
	// Changes is what the shim changed, one "field: from -> to" each.
	Changes []string `json:"changes,omitempty"`
	// Refused is true when the level refused the exec; Reason says why.
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Seccomp is what a container's seccomp filter did to one syscall, over a
// window of time: the first record at once, the later ones summed up.
type Seccomp struct {
	// Syscall is the syscall's name, Arch its ABI (SCMP_ARCH_X86_64).
	Syscall string `json:"syscall"`
	Arch    string `json:"arch,omitempty"`
	// Action is the filter's action as the kernel logs it: errno (denied),
	// log (trial mode: it ran), kill_process, kill_thread, trap, ...
	Action string `json:"action"`
	// Errno is what the syscall failed with (EPERM, ENOSYS), from the
	// container's profile, when the action is errno.
	Errno string `json:"errno,omitempty"`
	// Expected marks a probe the level denies by design and the caller
	// falls back from (see profiles.ExpectedProbes): no sign of trouble.
	Expected bool `json:"expected,omitempty"`
	// Count is the number of records in this event's window, Total since
	// the observer started; First and Last bound the window.
	Count uint64    `json:"count"`
	Total uint64    `json:"total"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// PID, Comm, Exe and UID are those of the last record's process (host
	// pid; exe as the host sees it).
	PID  int    `json:"pid"`
	Comm string `json:"comm,omitempty"`
	Exe  string `json:"exe,omitempty"`
	UID  uint32 `json:"uid"`
}

// Denied reports whether the syscall did not run (every action but log).
func (s *Seccomp) Denied() bool { return s.Action != "log" && s.Action != "allow" }

// Event is one thing hardened reports.
type Event struct {
	// Time is when it happened (for seccomp, when the event was made).
	Time      time.Time `json:"time"`
	Container Container `json:"container"`
	// Exactly one of Exec and Seccomp is set.
	Exec    *Exec    `json:"exec,omitempty"`
	Seccomp *Seccomp `json:"seccomp,omitempty"`
}

// Topic is the event's topic in containerd's event stream.
func (e *Event) Topic() string {
	if e.Exec != nil {
		return TopicExec
	}
	return TopicSeccomp
}

// String is the event as one line, for logs and `hardenctl events`.
func (e *Event) String() string {
	var b strings.Builder
	switch {
	case e.Exec != nil:
		x := e.Exec
		if x.Refused {
			fmt.Fprintf(&b, "exec %s into %s refused: %s: %s", x.ExecID, e.Container, quoteArgs(x.Args), x.Reason)
			return b.String()
		}
		tty := "no tty"
		if x.Terminal {
			tty = "tty"
		}
		fmt.Fprintf(&b, "exec %s into %s: %s as %s (asked %s), %s", x.ExecID, e.Container, quoteArgs(x.Args), x.User, x.RequestedUser, tty)
		if e.Container.Level != "" {
			fmt.Fprintf(&b, ", level %s", e.Container.Level)
		}
		if len(x.Changes) > 0 {
			fmt.Fprintf(&b, "; changed: %s", strings.Join(x.Changes, "; "))
		}
	case e.Seccomp != nil:
		s := e.Seccomp
		what := "denied"
		switch {
		case s.Action == "log":
			what = "would be denied (trial mode, it ran)"
		case s.Errno != "":
			what = "denied (" + s.Errno + ")"
		case s.Action != "errno":
			what = "denied (" + s.Action + ")"
		}
		if s.Expected {
			what += ", an expected probe"
		}
		fmt.Fprintf(&b, "seccomp: %s %s in %s", s.Syscall, what, e.Container)
		if e.Container.Level != "" {
			fmt.Fprintf(&b, ", level %s", e.Container.Level)
		}
		fmt.Fprintf(&b, ": pid %d %s", s.PID, s.Comm)
		if s.Exe != "" {
			fmt.Fprintf(&b, " (%s)", s.Exe)
		}
		if s.Count > 1 || s.Total > s.Count {
			fmt.Fprintf(&b, ", %d times in %s (%d in all)", s.Count, s.Last.Sub(s.First).Round(time.Millisecond), s.Total)
		}
	}
	return b.String()
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}
