package spec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mount(typ, src, dest string, opts ...string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: typ, Source: src, Options: opts})
	}
}

func editMount(dest string, f func(m *specs.Mount)) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == dest {
				f(&s.Mounts[i])
			}
		}
	}
}

func both(fs ...func(s *specs.Spec)) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		for _, f := range fs {
			f(s)
		}
	}
}

// userNS gives the container its own user namespace with the mappings a
// hostUsers: false pod gets.
func userNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 5, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 5, Size: 65536}}
}

func idmapped(src, dest string, uids, gids []specs.LinuxIDMapping, opts ...string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src,
			Options: append([]string{"rbind"}, opts...), UIDMappings: uids, GIDMappings: gids})
	}
}

func hasOptions(dest string, want []string, not ...string) func(t *testing.T, s *specs.Spec) {
	return func(t *testing.T, s *specs.Spec) {
		t.Helper()
		m, ok := hasMount(s, dest)
		if !ok {
			t.Fatalf("no mount at %s", dest)
		}
		for _, o := range want {
			if !slices.Contains(m.Options, o) {
				t.Errorf("%s options %v, want %s", dest, m.Options, o)
			}
		}
		for _, o := range not {
			if slices.Contains(m.Options, o) {
				t.Errorf("%s options %v, want no %s", dest, m.Options, o)
			}
		}
	}
}

func TestMountRules(t *testing.T) {
	host := Host{UnprivilegedPortSysctl: true}
	cri := withFacts("cri-container", Inputs{Host: host})
	realCRI := withFacts("real-cri-container", Inputs{Host: host})
	// k3s: containerd's root and state and the kubelet's root elsewhere.
	k3s := Inputs{Host: Host{UnprivilegedPortSysctl: true, ContainerdRoot: "/opt/k3s/agent/containerd", ContainerdState: "/opt/k3s/run/containerd",
		KubeletRoot: "/opt/k3s/kubelet", RuntimeSockets: []string{"/opt/k3s/run/containerd/containerd.sock"}}}
	otherSandbox := strings.Repeat("e", 64)
	cases := []ruleCase{
		// Filesystem types: only what runc and containerd mount.
		{name: "ext4 of the host disk", mutate: mount("ext4", "/dev/vda", "/disk"), refused: [2]string{"mounts", "mounts[/disk].type"}},
		{name: "xfs of a block device", mutate: mount("xfs", "/dev/sdb1", "/data", "rw"), refused: [2]string{"mounts", "mounts[/data].type"}},
		{name: "overlay with host lowerdirs", mutate: mount("overlay", "overlay", "/merged", "lowerdir=/etc:/root", "upperdir=/tmp/u", "workdir=/tmp/w"),
			refused: [2]string{"mounts", "mounts[/merged].type"}},
		{name: "nfs", mutate: mount("nfs", "10.0.0.1:/export", "/nfs", "vers=4"), refused: [2]string{"mounts", "mounts[/nfs].type"}},
		{name: "fuse", mutate: mount("fuse.sshfs", "host:/", "/fuse"), refused: [2]string{"mounts", "mounts[/fuse].type"}},
		{name: "9p", mutate: mount("9p", "hostshare", "/9p", "trans=virtio"), refused: [2]string{"mounts", "mounts[/9p].type"}},
		{name: "devtmpfs", mutate: mount("devtmpfs", "devtmpfs", "/hostdev"), refused: [2]string{"mounts", "mounts[/hostdev].type"}},
		{name: "debugfs", mutate: mount("debugfs", "debugfs", "/debug"), refused: [2]string{"mounts", "mounts[/debug].type"}},
		{name: "no type", mutate: mount("", "/etc", "/x"), refused: [2]string{"mounts", "mounts[/x].type"}},
		{name: "any type with rbind is a bind", mutate: mount("ext4", "/etc", "/x", "rbind"), refused: [2]string{"mounts", "mounts[/x].source"}},
		{name: "none with rbind of an allowed path", level: "hostpaths", mutate: mount("none", "/srv/data", "/data", "rbind", "ro"),
			changed: [2]string{"mounts", "mounts[/data].options"}, check: hasOptions("/data", []string{"nosuid", "nodev", "ro"})},
		// Kernel filesystems: each once, in its place.
		{name: "second proc elsewhere", mutate: mount("proc", "proc", "/hostproc"), refused: [2]string{"mounts", "mounts[/hostproc].destination"}},
		{name: "second proc over /proc", mutate: mount("proc", "proc", "/proc", "nosuid"), refused: [2]string{"mounts", "mounts[/proc].destination"}},
		{name: "second mqueue", mutate: mount("mqueue", "mqueue", "/dev/mqueue"), refused: [2]string{"mounts", "mounts[/dev/mqueue].destination"}},
		{name: "mqueue elsewhere", mutate: both(editMount("/dev/mqueue", func(m *specs.Mount) { m.Destination = "/mq" })),
			refused: [2]string{"mounts", "mounts[/mq].destination"}},
		{name: "sysfs elsewhere", mutate: mount("sysfs", "sysfs", "/hostsys", "ro"), refused: [2]string{"mounts", "mounts[/hostsys].destination"}},
		{name: "second cgroup", fixture: "real-cri-container", inputs: realCRI, mutate: mount("cgroup2", "cgroup", "/sys/fs/cgroup", "ro"),
			refused: [2]string{"mounts", "mounts[/sys/fs/cgroup].destination"}},
		{name: "devpts elsewhere", mutate: mount("devpts", "devpts", "/pts", "newinstance"), refused: [2]string{"mounts", "mounts[/pts].destination"}},
		// Destinations.
		{name: "relative destination", mutate: mount("tmpfs", "tmpfs", "data"), refused: [2]string{"mounts", "mounts[data].destination"}},
		{name: "tmpfs over /proc/sys unmasks it", mutate: mount("tmpfs", "tmpfs", "/proc/sys"), refused: [2]string{"mounts", "mounts[/proc/sys].destination"}},
		{name: "tmpfs over /proc/sys, unclean", mutate: mount("tmpfs", "tmpfs", "/tmp/../proc/sys/"), refused: [2]string{"mounts", "mounts[/tmp/../proc/sys/].destination"}},
		{name: "tmpfs over /sys/firmware", mutate: mount("tmpfs", "tmpfs", "/sys/firmware"), refused: [2]string{"mounts", "mounts[/sys/firmware].destination"}},
		{name: "tmpfs over /", mutate: mount("tmpfs", "tmpfs", "/"), refused: [2]string{"mounts", "mounts[/].destination"}},
		{name: "bind over /proc/sys/kernel/ns_last_pid", level: "lxcfs", mutate: bind("/var/lib/lxcfs/proc/stat", "/proc/sys/kernel/ns_last_pid"),
			refused: [2]string{"mounts", "mounts[/proc/sys/kernel/ns_last_pid].destination"}},
		{name: "lxcfs bind over /proc/meminfo", level: "lxcfs", mutate: bind("/var/lib/lxcfs/proc/meminfo", "/proc/meminfo", "ro"),
			check: hasOptions("/proc/meminfo", []string{"nosuid", "nodev"})},
		{name: "lxcfs bind without the level", mutate: bind("/var/lib/lxcfs/proc/meminfo", "/proc/meminfo", "ro"), refused: [2]string{"mounts", "mounts[/proc/meminfo].source"}},
		// Options.
		{name: "overlay option on a tmpfs", mutate: mount("tmpfs", "tmpfs", "/x", "lowerdir=/etc"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "two options in one", mutate: mount("tmpfs", "tmpfs", "/x", "size=1m,dev"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "remount", mutate: mount("tmpfs", "tmpfs", "/x", "remount"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "bad mode", mutate: mount("tmpfs", "tmpfs", "/x", "mode=1777x"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "empty size", mutate: mount("tmpfs", "tmpfs", "/x", "size="), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "flag with a value", mutate: mount("tmpfs", "tmpfs", "/x", "noswap=1"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "data option on a bind", level: "hostpaths", mutate: bind("/srv/data", "/data", "mode=755"), refused: [2]string{"mounts", "mounts[/data].options"}},
		{name: "idmap on a tmpfs", mutate: mount("tmpfs", "tmpfs", "/x", "idmap"), refused: [2]string{"mounts", "mounts[/x].options"}},
		{name: "tmpfs options users give", mutate: mount("tmpfs", "tmpfs", "/x", "rw", "noexec", "nosuid", "nodev", "size=65536k", "mode=1777",
			"uid=1000", "gid=1000", "nr_inodes=1k", "huge=within_size", "inode64", "noswap", "tmpcopyup", "rprivate", "rnosymfollow"),
			check: hasOptions("/x", []string{"size=65536k", "tmpcopyup"})},
		{name: "proc with hidepid", mutate: editMount("/proc", func(m *specs.Mount) { m.Options = append(m.Options, "hidepid=invisible", "subset=pid") })},
		{name: "suid and dev on a tmpfs", mutate: mount("tmpfs", "tmpfs", "/x", "suid", "dev", "rdev"),
			changed: [2]string{"mounts", "mounts[/x].options"}, check: hasOptions("/x", []string{"nosuid", "nodev"}, "suid", "dev", "rdev")},
		{name: "/dev keeps its device nodes", mutate: editMount("/dev", func(m *specs.Mount) { m.Options = append(m.Options, "dev") }),
			check: hasOptions("/dev", []string{"dev"}, "nodev")},
		{name: "shared tmpfs becomes slave", mutate: mount("tmpfs", "tmpfs", "/x", "rshared"),
			changed: [2]string{"mounts", "mounts[/x].options"}, check: hasOptions("/x", []string{"rslave"}, "rshared")},
		{name: "sysfs read-write", mutate: editMount("/sys", func(m *specs.Mount) { m.Options = []string{"nosuid", "noexec", "nodev", "rw"} }),
			changed: [2]string{"mounts", "mounts[/sys].options"}, check: hasOptions("/sys", []string{"ro"}, "rw")},
		{name: "sysfs ro then rw", mutate: editMount("/sys", func(m *specs.Mount) { m.Options = append(m.Options, "rw") }),
			changed: [2]string{"mounts", "mounts[/sys].options"}, check: hasOptions("/sys", []string{"ro"}, "rw")},
		{name: "cgroup recursive rw", fixture: "real-cri-container", inputs: realCRI,
			mutate:  editMount("/sys/fs/cgroup", func(m *specs.Mount) { m.Options = []string{"nosuid", "rrw", "nsdelegate", "memory_recursiveprot"} }),
			changed: [2]string{"mounts", "mounts[/sys/fs/cgroup].options"}, check: hasOptions("/sys/fs/cgroup", []string{"ro", "nsdelegate"}, "rrw")},
		{name: "rootfs propagation shared", mutate: func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }, changed: [2]string{"mounts", "linux.rootfsPropagation"}},
		{name: "rshared bind becomes rslave", level: "hostpaths", mutate: bind("/srv/data", "/data", "rshared"),
			check: hasOptions("/data", []string{"rslave", "nosuid", "nodev"}, "rshared")},
		{name: "suid bind loses suid", level: "hostpaths", mutate: bind("/srv/data", "/data", "suid", "dev", "rsuid"),
			check: hasOptions("/data", []string{"nosuid", "nodev"}, "suid", "dev", "rsuid")},
		// Bind sources: relative ones resolve against the bundle.
		{name: "relative source", mutate: bind("../../../../etc", "/hostetc"), refused: [2]string{"mounts", "mounts[/hostetc].source"}},
		{name: "relative source in a CRI pod", fixture: "cri-container", inputs: cri, mutate: bind("rootfs/../../../../../etc", "/hostetc"),
			refused: [2]string{"mounts", "mounts[/hostetc].source"}},
		{name: "empty source", mutate: bind("", "/x"), refused: [2]string{"mounts", "mounts[/x].source"}},
		// Bind sources: nothing but what is the container's own or listed.
		{name: "unlisted host path", mutate: bind("/srv/data", "/data"), refused: [2]string{"mounts", "mounts[/data].source"}},
		{name: "listed host path", level: "hostpaths", mutate: bind("/srv/data", "/data"), changed: [2]string{"mounts", "mounts[/data].options"}},
		{name: "host root", mutate: bind("/", "/host", "ro"), refused: [2]string{"mounts", "mounts[/host].source"}},
		{name: "host root even when listed", level: "allow-root", mutate: bind("/", "/host", "ro"), refused: [2]string{"mounts", "mounts[/host].source"}},
		{name: "listed / allows an ordinary path", level: "allow-root", mutate: bind("/srv/data", "/data")},
		{name: "host /proc", mutate: bind("/proc", "/hostproc", "ro"), refused: [2]string{"mounts", "mounts[/hostproc].source"}},
		{name: "host /sys read-only", mutate: bind("/sys/fs/cgroup", "/cg", "ro"), refused: [2]string{"mounts", "mounts[/cg].source"}},
		{name: "host /dev/mem", mutate: bind("/dev/mem", "/mem"), refused: [2]string{"mounts", "mounts[/mem].source"}},
		{name: "docker.sock", mutate: bind("/var/run/docker.sock", "/d.sock"), refused: [2]string{"mounts", "mounts[/d.sock].source"}},
		{name: "/run, which holds containerd's socket", level: "allow-broad", mutate: bind("/run", "/hostrun"), refused: [2]string{"mounts", "mounts[/hostrun].source"}},
		{name: "/var, which holds containerd's root", level: "allow-broad", mutate: bind("/var", "/hostvar"), refused: [2]string{"mounts", "mounts[/hostvar].source"}},
		{name: "/var/log under a broad entry", level: "allow-broad", mutate: bind("/var/log", "/hostlog", "ro")},
		{name: "containerd's root under a broad entry", level: "allow-broad", mutate: bind("/var/lib/containerd/io.containerd.content.v1.content", "/content"),
			refused: [2]string{"mounts", "mounts[/content].source"}},
		{name: "/etc/shadow under an entry for /etc/ssl/certs", level: "allow-etc", mutate: bind("/etc/shadow", "/shadow"), refused: [2]string{"mounts", "mounts[/shadow].source"}},
		{name: "/etc/ssl under an entry for /etc/ssl/certs", level: "allow-etc", mutate: bind("/etc/ssl", "/ssl"), refused: [2]string{"mounts", "mounts[/ssl].source"}},
		{name: "/etc/ssl/certs listed", level: "allow-etc", mutate: bind("/etc/ssl/certs", "/etc/ssl/certs", "ro"), changed: [2]string{"mounts", "mounts[/etc/ssl/certs].options"}},
		{name: "/etc listed by name", level: "allow-etc-dir", mutate: bind("/etc/ssl", "/ssl", "ro")},
		// The node's own runtime socket, wherever it is, and every directory above it.
		{name: "this node's socket", level: "hostpaths", mutate: bind("/srv/k3s/containerd.sock", "/c.sock"),
			inputs: Inputs{Host: Host{RuntimeSockets: []string{"/srv/k3s/containerd.sock"}}}, refused: [2]string{"mounts", "mounts[/c.sock].source"}},
		{name: "the directory of this node's socket", level: "hostpaths", mutate: bind("/srv/k3s", "/k3s"),
			inputs: Inputs{Host: Host{RuntimeSockets: []string{"/srv/k3s/containerd.sock"}}}, refused: [2]string{"mounts", "mounts[/k3s].source"}},
		{name: "a listed directory above this node's socket", level: "hostpaths", mutate: bind("/srv", "/srv"),
			inputs: Inputs{Host: Host{RuntimeSockets: []string{"/srv/k3s/containerd.sock"}}}, refused: [2]string{"mounts", "mounts[/srv].source"}},
		{name: "a sibling of this node's socket's directory", level: "hostpaths", mutate: bind("/srv/data", "/data"),
			inputs: Inputs{Host: Host{RuntimeSockets: []string{"/srv/k3s/containerd.sock"}}}},
		{name: "the socket's directory, everything in it listed", level: "allow-socket-dir", mutate: bind("/srv/k3s", "/k3s"),
			inputs: Inputs{Host: Host{RuntimeSockets: []string{"/srv/k3s/containerd.sock"}}}},
		{name: "through a symlink to the socket's directory", level: "hostpaths", mutate: bind("/srv/link", "/x"), inputs: Inputs{Host: Host{
			RuntimeSockets: []string{"/run/containerd/containerd.sock"},
			ResolvePath: func(p string) string {
				if p == "/srv/link" {
					return "/run/containerd"
				}
				return p
			}}}, refused: [2]string{"mounts", "mounts[/x].source"}},
		{name: "through a symlink to /", level: "hostpaths", mutate: bind("/srv/link", "/x"), inputs: Inputs{Host: Host{ResolvePath: func(p string) string {
			if p == "/srv/link" {
				return "/"
			}
			return p
		}}}, refused: [2]string{"mounts", "mounts[/x].source"}},
		// k3s-style layout: containerd's root and state are not the default paths.
		{name: "another container's live rootfs (k3s)", level: "allow-broad", inputs: k3s,
			mutate:  bind("/opt/k3s/run/containerd/io.containerd.runtime.v2.task/k8s.io/"+strings.Repeat("a", 64)+"/rootfs", "/other"),
			refused: [2]string{"mounts", "mounts[/other].source"}},
		{name: "the content store (k3s)", level: "allow-broad", inputs: k3s,
			mutate: bind("/opt/k3s/agent/containerd/io.containerd.content.v1.content", "/content"), refused: [2]string{"mounts", "mounts[/content].source"}},
		{name: "a directory that holds containerd's root (k3s)", level: "allow-broad", inputs: k3s,
			mutate: bind("/opt/k3s/agent", "/agent"), refused: [2]string{"mounts", "mounts[/agent].source"}},
		{name: "another pod's kubelet volumes (k3s)", level: "allow-broad", inputs: k3s,
			mutate: bind("/opt/k3s/kubelet/pods/other-uid/volumes/kubernetes.io~secret/token", "/token"), refused: [2]string{"mounts", "mounts[/token].source"}},
		{name: "an ordinary path next to containerd (k3s)", level: "allow-broad", inputs: k3s, mutate: bind("/opt/k3s/agent/images", "/images")},
		// CRI: a container's own files are allowed, another's are not.
		{name: "CRI container's own files", fixture: "cri-container", inputs: cri,
			check: hasOptions("/etc/hostname", []string{"nosuid", "nodev", "rw"})},
		{name: "CRI sandbox's own files", fixture: "cri-sandbox", inputs: withFacts("cri-sandbox", Inputs{Host: host})},
		{name: "real CRI container's own files and VOLUME", fixture: "real-cri-container", inputs: realCRI,
			check: hasOptions("/data", []string{"nosuid", "nodev"})},
		{name: "real CRI sandbox", fixture: "real-cri-sandbox", level: "host-network", inputs: withFacts("real-cri-sandbox", Inputs{Host: host})},
		{name: "CRI files unknown: refused", fixture: "cri-container", refused: [2]string{"mounts", "mounts[/etc/hostname].source"}},
		{name: "CRI files of another pod", fixture: "cri-container", inputs: cri,
			mutate:  bind("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/"+otherSandbox+"/resolv.conf", "/other/resolv.conf"),
			refused: [2]string{"mounts", "mounts[/other/resolv.conf].source"}},
		{name: "shm of another pod", fixture: "cri-container", inputs: cri,
			mutate: bind("/run/containerd/io.containerd.grpc.v1.cri/sandboxes/"+otherSandbox+"/shm", "/other/shm"), refused: [2]string{"mounts", "mounts[/other/shm].source"}},
		{name: "another file of the pod's sandbox directory", fixture: "cri-container", inputs: cri,
			mutate: bind("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/"+criSandboxID, "/sandbox"), refused: [2]string{"mounts", "mounts[/sandbox].source"}},
		{name: "another container's VOLUME", fixture: "real-cri-container", inputs: realCRI,
			mutate: bind(realDir+"/root/io.containerd.grpc.v1.cri/containers/"+strings.Repeat("b", 64)+"/volumes/x", "/other"), refused: [2]string{"mounts", "mounts[/other].source"}},
		{name: "the container's own checkpoint directory", fixture: "real-cri-container", inputs: realCRI,
			mutate: bind(realDir+"/root/io.containerd.grpc.v1.cri/containers/"+realContainerID, "/mine"), refused: [2]string{"mounts", "mounts[/mine].source"}},
		{name: "another container's rootfs (test containerd)", fixture: "real-cri-container", inputs: realCRI, level: "allow-broad",
			mutate: bind(realDir+"/state/io.containerd.runtime.v2.task/k8s.io/"+realSandboxID+"/rootfs", "/other"), refused: [2]string{"mounts", "mounts[/other].source"}},
		{name: "the pod's own image volume", fixture: "real-cri-container", inputs: realCRI,
			mutate: bind(realDir+"/state/io.containerd.grpc.v1.cri/image-volumes/"+realSandboxID+"/"+strings.Repeat("c", 64), "/image", "ro")},
		{name: "another pod's image volume", fixture: "real-cri-container", inputs: realCRI,
			mutate: bind(realDir+"/state/io.containerd.grpc.v1.cri/image-volumes/"+otherSandbox+"/x", "/image", "ro"), refused: [2]string{"mounts", "mounts[/image].source"}},
		{name: "own pod's kubelet volume", fixture: "cri-container", inputs: cri,
			mutate: bind("/var/lib/kubelet/pods/"+criPodUID+"/volumes/kubernetes.io~empty-dir/cache", "/cache")},
		{name: "another pod's kubelet volume", fixture: "cri-container", inputs: cri,
			mutate: bind("/var/lib/kubelet/pods/other-uid/volumes/kubernetes.io~secret/token", "/token"), refused: [2]string{"mounts", "mounts[/token].source"}},
		{name: "the kubelet's pods directory", fixture: "cri-container", inputs: cri, mutate: bind("/var/lib/kubelet/pods", "/pods"), refused: [2]string{"mounts", "mounts[/pods].source"}},
		{name: "pod uid .. is nobody's", fixture: "cri-container", inputs: func() Inputs { in := cri; in.Container.PodUID = ".."; return in }(),
			mutate: bind("/var/lib/kubelet/pods/../config.yaml", "/cfg"), refused: [2]string{"mounts", "mounts[/cfg].source"}},
		{name: "sandbox id with a slash is nobody's", fixture: "cri-container", inputs: func() Inputs { in := cri; in.Container.SandboxID = "a/../b"; return in }(),
			refused: [2]string{"mounts", "mounts[/etc/hostname].source"}},
		{name: "containerd root through a symlink", fixture: "cri-container", inputs: func() Inputs {
			in := cri
			in.Host.ResolvePath = func(p string) string { return strings.Replace(p, "/var/lib/containerd", "/data/containerd", 1) }
			return in
		}(), changed: [2]string{"mounts", "mounts[/etc/hostname].source"}, check: func(t *testing.T, s *specs.Spec) {
			if m, _ := hasMount(s, "/etc/hostname"); !strings.HasPrefix(m.Source, "/data/containerd/") {
				t.Errorf("/etc/hostname source %s, want the resolved /data/containerd/...", m.Source)
			}
		}},
		{name: "listed path through a symlink is mounted resolved", level: "hostpaths", mutate: bind("/srv/link", "/x"), inputs: Inputs{Host: Host{ResolvePath: func(p string) string {
			return strings.Replace(p, "/srv/link", "/srv/data/v1", 1)
		}}}, changed: [2]string{"mounts", "mounts[/x].source"}, check: func(t *testing.T, s *specs.Spec) {
			if m, _ := hasMount(s, "/x"); m.Source != "/srv/data/v1" {
				t.Errorf("/x source %s, want /srv/data/v1", m.Source)
			}
		}},
		// Host IPC: CRI binds the host's /dev/shm.
		{name: "host /dev/shm with host IPC", level: "host-ipc", mutate: both(setNamespacePath(specs.IPCNamespace, "/proc/1/ns/ipc"),
			editMount("/dev/shm", func(m *specs.Mount) {
				*m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "rw"}}
			}))},
		{name: "host /dev/shm without host IPC", level: "host-ipc",
			mutate: editMount("/dev/shm", func(m *specs.Mount) {
				*m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind"}}
			}),
			refused: [2]string{"mounts", "mounts[/dev/shm].source"}},
		// Host network with a user namespace: CRI binds the host's /sys read-only.
		{name: "host /sys for a user namespace in the host network", level: "host-network", mutate: both(userNS, dropNamespace(specs.NetworkNamespace),
			editMount("/sys", func(m *specs.Mount) {
				*m = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "rro", "nosuid", "nodev", "noexec"}}
			}))},
		{name: "host /sys read-write for a user namespace", level: "host-network", mutate: both(userNS, dropNamespace(specs.NetworkNamespace),
			editMount("/sys", func(m *specs.Mount) {
				*m = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid"}}
			})),
			refused: [2]string{"mounts", "mounts[/sys].destination"}},
		{name: "host /sys without a user namespace", level: "host-network", mutate: both(dropNamespace(specs.NetworkNamespace),
			editMount("/sys", func(m *specs.Mount) {
				*m = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "rro"}}
			})),
			refused: [2]string{"mounts", "mounts[/sys].destination"}},
		// Idmapped mounts.
		{name: "idmap mapping host root, no user namespace", level: "hostpaths",
			mutate:  idmapped("/srv/data", "/data", []specs.LinuxIDMapping{{ContainerID: 65534, HostID: 0, Size: 1}}, []specs.LinuxIDMapping{{ContainerID: 65534, HostID: 0, Size: 1}}, "idmap"),
			refused: [2]string{"mounts", "mounts[/data].uidMappings"}},
		{name: "idmap without the option, no user namespace", level: "hostpaths",
			mutate:  idmapped("/srv/data", "/data", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}),
			refused: [2]string{"mounts", "mounts[/data].uidMappings"}},
		{name: "idmap with the user namespace's mappings", level: "hostpaths", mutate: func(s *specs.Spec) {
			userNS(s)
			idmapped("/srv/data", "/data", s.Linux.UIDMappings, s.Linux.GIDMappings, "idmap")(s)
		}, check: hasOptions("/data", []string{"idmap", "nosuid"})},
		{name: "idmap option alone in a user namespace", level: "hostpaths", mutate: both(userNS, bind("/srv/data", "/data", "ridmap"))},
		{name: "idmap with other mappings than the user namespace's", level: "hostpaths", mutate: func(s *specs.Spec) {
			userNS(s)
			idmapped("/srv/data", "/data", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}, s.Linux.GIDMappings, "idmap")(s)
		}, refused: [2]string{"mounts", "mounts[/data].uidMappings"}},
		{name: "idmap in a user namespace that maps host root", level: "hostpaths", mutate: func(s *specs.Spec) {
			userNS(s)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
			idmapped("/srv/data", "/data", s.Linux.UIDMappings, s.Linux.GIDMappings, "idmap")(s)
		}, refused: [2]string{"mounts", "mounts[/data].uidMappings"}},
		{name: "idmap in a joined user namespace without mappings", level: "hostpaths", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/4242/ns/user"})
			bind("/srv/data", "/data", "idmap")(s)
		}, refused: [2]string{"mounts", "mounts[/data].uidMappings"}},
		{name: "idmap on a tmpfs via mappings", mutate: func(s *specs.Spec) {
			userNS(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", UIDMappings: s.Linux.UIDMappings, GIDMappings: s.Linux.GIDMappings})
		}, refused: [2]string{"mounts", "mounts[/x].uidMappings"}},
		{name: "CRI userns pod's hosts file", fixture: "cri-container", inputs: cri, mutate: func(s *specs.Spec) {
			userNS(s)
			editMount("/etc/hostname", func(m *specs.Mount) { m.UIDMappings, m.GIDMappings = s.Linux.UIDMappings, s.Linux.GIDMappings })(s)
		}},
	}
	runRuleCases(t, host, cases)
}

// TestMountRefusalsSayWhy checks the one-line messages: the path, why, and
// the knob.
func TestMountRefusalsSayWhy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		level  string
		mutate func(s *specs.Spec)
		inputs Inputs
		want   []string
	}{
		{"relative", "", bind("../../../../etc", "/e"), Inputs{Container: ContainerInfo{Bundle: "/run/containerd/io.containerd.runtime.v2.task/default/x"}},
			[]string{"mounts[/e].source=../../../../etc", "relative bind source", "/run/containerd/io.containerd.runtime.v2.task/default/x", "absolute host path"}},
		{"unlisted", "", bind("/srv/data", "/data"), Inputs{},
			[]string{"mounts[/data].source=/srv/data", "neither this container's own", "list /srv/data in mounts.allowHostPaths"}},
		{"socket dir", "allow-broad", bind("/run", "/r"), Inputs{Host: Host{RuntimeSockets: []string{"/run/containerd/containerd.sock"}}},
			[]string{"holds /run/containerd/containerd.sock", "API socket", "lists /run/containerd/containerd.sock itself in mounts.allowHostPaths"}},
		{"well-known socket dir", "allow-broad", bind("/run", "/r"), Inputs{},
			[]string{"holds /run/docker.sock", "Docker API"}},
		{"containerd root", "allow-broad", bind("/opt/c/root/io.containerd.content.v1.content", "/c"), Inputs{Host: Host{ContainerdRoot: "/opt/c/root"}},
			[]string{"containerd's root directory", "(/opt/c/root)"}},
		{"symlink", "hostpaths", bind("/srv/l", "/l"), Inputs{Host: Host{ResolvePath: func(p string) string { return strings.Replace(p, "/srv/l", "/etc", 1) }}},
			[]string{"mounts[/l].source=/srv/l -> /etc", "host configuration"}},
		{"type", "", mount("ext4", "/dev/vda", "/disk"), Inputs{},
			[]string{"mounts[/disk].type=ext4", "mount type ext4 (source /dev/vda)", "no level allows another filesystem type"}},
		{"destination", "", mount("proc", "proc", "/hostproc"), Inputs{},
			[]string{"mounts[/hostproc].destination=/hostproc", "a proc mount belongs at /proc only", "every container has its proc"}},
		{"option", "", mount("tmpfs", "tmpfs", "/x", "lowerdir=/etc"), Inputs{},
			[]string{"mounts[/x].options=lowerdir=/etc", "is not one runc, containerd or CRI use for a tmpfs mount", "gid, huge"}},
		{"idmap", "hostpaths", idmapped("/srv/d", "/d", []specs.LinuxIDMapping{{ContainerID: 65534, HostID: 0, Size: 1}}, nil, "idmap"), Inputs{},
			[]string{"mounts[/d].uidMappings=uid [65534:0:1] gid []", "without its own user namespace", "hostUsers: false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "ctr-run")
			tc.mutate(s)
			_, err := Harden(s, testLevel(t, tc.level), tc.inputs)
			if err == nil {
				t.Fatal("Harden accepted the spec")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Harden = %q, want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Harden = %q: more than one line", err)
			}
		})
	}
}
