package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/spec"
)

// hostProbe answers the questions some rules ask about the node. Results
// that cannot change while the shim runs are computed once.
type hostProbe struct {
	once      sync.Once
	apparmor  bool // module enabled
	portCtl   bool // net.ipv4.ip_unprivileged_port_start exists
	maxNoFile uint64
	hostNS    map[specs.LinuxNamespaceType][]nsID
	procRoot  string
	sysRoot   string
	profileMu sync.Mutex
	profiles  map[string]bool // AppArmor profile name -> loaded
	sockets   []string        // containerd's API sockets (spec.Host.RuntimeSockets)
	idmapped  bool            // idmapped mounts, overlayfs lower layers included
	window    spec.IDRange    // the allocator's window of host ids
}

type nsID struct{ dev, ino uint64 }

// newHostProbe probes this host for a shim of the containerd serving at
// address (its gRPC socket); the TTRPC socket comes from $TTRPC_ADDRESS,
// which containerd gives its shims.
func newHostProbe(address string) *hostProbe {
	p := &hostProbe{procRoot: "/proc", sysRoot: "/sys"}
	for _, a := range []string{address, os.Getenv("TTRPC_ADDRESS")} {
		if a = strings.TrimPrefix(a, "unix://"); a != "" {
			p.sockets = append(p.sockets, a)
		}
	}
	return p
}

func (p *hostProbe) init() {
	p.once.Do(func() {
		b, err := os.ReadFile(filepath.Join(p.sysRoot, "module/apparmor/parameters/enabled"))
		p.apparmor = err == nil && strings.TrimSpace(string(b)) == "Y"
		_, err = os.Stat(filepath.Join(p.procRoot, "sys/net/ipv4/ip_unprivileged_port_start"))
		p.portCtl = err == nil
		p.hostNS = map[specs.LinuxNamespaceType][]nsID{}
		for t, name := range map[specs.LinuxNamespaceType]string{
			specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.NetworkNamespace: "net",
			specs.MountNamespace: "mnt", specs.UserNamespace: "user", specs.CgroupNamespace: "cgroup",
		} {
			// The shim runs in the namespaces containerd runs in: those are
			// "the host's" for a container (and /proc/1 may be unreadable,
			// as on the build machines). PID 1's count too where readable.
			for _, pid := range []string{"self", "1"} {
				if id, ok := statNS(filepath.Join(p.procRoot, pid, "ns", name)); ok {
					p.hostNS[t] = append(p.hostNS[t], id)
				}
			}
		}
		p.idmapped = userns.KernelIDMapsOverlay()
		if a, err := userns.FromEnv(); err == nil {
			p.window = spec.IDRange{HostID: a.First, Size: a.Length}
		}
		p.profiles = map[string]bool{}
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			p.maxNoFile = lim.Max
		}
	})
}

func statNS(path string) (nsID, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nsID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nsID{}, false
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, true
}

// profileLoaded reports whether AppArmor has the profile loaded.
func (p *hostProbe) profileLoaded(name string) bool {
	p.profileMu.Lock()
	defer p.profileMu.Unlock()
	if loaded, ok := p.profiles[name]; ok && loaded {
		return true
	}
	b, err := os.ReadFile(filepath.Join(p.sysRoot, "kernel/security/apparmor/profiles"))
	loaded := false
	for _, line := range strings.Split(string(b), "\n") {
		if n, _, _ := strings.Cut(line, " ("); err == nil && n == name {
			loaded = true
		}
	}
	p.profiles[name] = loaded
	return loaded
}

// host returns the facts for a level whose AppArmor profile is profile.
func (p *hostProbe) host(profile string) spec.Host {
	p.init()
	return spec.Host{
		MaxNoFile:              p.maxNoFile,
		AppArmor:               p.apparmor && p.profileLoaded(profile),
		UnprivilegedPortSysctl: p.portCtl,
		ResolvePath:            resolvePath,
		IsHostNamespace:        p.isHostNamespace,
		RuntimeSockets:         p.sockets,
		IDMappedMounts:         p.idmapped,
		UsernsWindow:           p.window,
	}
}

// isHostNamespace compares a namespace path with the host's namespace of
// the type by device and inode, as the kernel identifies namespaces. A
// path that cannot be read counts as the host's: fail closed.
func (p *hostProbe) isHostNamespace(t specs.LinuxNamespaceType, path string) bool {
	hosts := p.hostNS[t]
	if len(hosts) == 0 {
		return false
	}
	id, ok := statNS(path)
	return !ok || slices.Contains(hosts, id)
}

// resolvePath resolves symbolic links in a bind mount's source, so that a
// link to a sensitive path is judged as that path.
func resolvePath(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// taskPlugin is the URI of containerd's task runtime plugin, whose root
// and state directories are <root>/<URI> and <state>/<URI> (containerd
// v2.4.2, cmd/containerd/server: plugins.PropertyRootDir and
// PropertyStateDir are filepath.Join(config.Root or .State, p.URI())).
const taskPlugin = "io.containerd.runtime.v2.task"

// containerdDirs returns the root and state directories of the containerd
// that created the bundle, from what that containerd wrote, never assumed
// (k3s and rke2 keep them elsewhere): it creates every bundle as
// <state>/io.containerd.runtime.v2.task/<namespace>/<id>, with a symbolic
// link "work" to <root>/io.containerd.runtime.v2.task/<namespace>/<id>
// (core/runtime/v2/bundle.go, NewBundle). A bundle of another shape is an
// error: without them, the mounts rule could not protect containerd's
// directories.
func containerdDirs(bundle, ns, id string) (root, state string, err error) {
	under := func(dir string) (string, bool) {
		suffix := string(filepath.Separator) + filepath.Join(taskPlugin, ns, id)
		base, ok := strings.CutSuffix(filepath.Clean(dir), suffix)
		return base, ok && filepath.IsAbs(base) && base != "/"
	}
	state, ok := under(bundle)
	if !ok {
		return "", "", fmt.Errorf("bundle %s is not <state>/%s/%s/%s: cannot tell containerd's state directory", bundle, taskPlugin, ns, id)
	}
	work, err := os.Readlink(filepath.Join(bundle, "work"))
	if err != nil {
		return "", "", fmt.Errorf("cannot tell containerd's root directory: %w", err)
	}
	root, ok = under(work)
	if !ok {
		return "", "", fmt.Errorf("bundle %s: work links to %s, not <root>/%s/%s/%s: cannot tell containerd's root directory", bundle, work, taskPlugin, ns, id)
	}
	return root, state, nil
}
