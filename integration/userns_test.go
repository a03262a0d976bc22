package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/internal/userns"
)

// chownAndDrop is the entrypoint pattern of many official images
// (postgres, redis, mariadb): as root, make the data directory the
// application's, then drop to the application's user and write there;
// then what the tests check from inside.
const chownAndDrop = `set -e
mkdir -p /data/db
chown -R app:app /data/db
chmod 700 /data/db
su -s /bin/sh app -c 'echo written-by-app > /data/db/file && id -u > /data/db/uid'
echo "app-uid=$(cat /data/db/uid) owner=$(stat -c %u:%g /data/db/file)"
echo "root-uid=$(id -u) uid_map=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
echo "image-owner=$(stat -c %u /bin/busybox) home-owner=$(stat -c %u /home/app)"
(echo x > /bin/busybox) 2>/dev/null && echo image=writable || echo image=immutable
(chown app /bin/busybox) 2>/dev/null && echo chown-image=ok || echo chown-image=denied
ping -c1 -W5 127.0.0.1 >/dev/null 2>&1 && echo ping=ok || echo ping=failed
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | tr ':' '='
(unshare -U true) 2>/dev/null && echo unshare=ok || echo unshare=denied
(mount -t tmpfs none /mnt) 2>/dev/null && echo mount=ok || echo mount=denied
`

// namespacedCaps is the mask of restricted's capabilities.inUserNamespace
// with CAP_NET_RAW: chown 0, dac_override 1, fowner 3, kill 5, setgid 6,
// setuid 7, net_bind_service 10, net_raw 13, setfcap 31.
const namespacedCaps = "00000000800024eb"

// hostIDs reads the uids and gids of a host process from /proc.
func hostIDs(t *testing.T, pid uint32) (uids, gids []uint64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the status of process %d: %v", pid, err)
	}
	parse := func(v string) []uint64 {
		var out []uint64
		for _, f := range strings.Fields(v) {
			n, _ := strconv.ParseUint(f, 10, 32)
			out = append(out, n)
		}
		return out
	}
	st := string(data)
	return parse(statusField(st, "Uid")), parse(statusField(st, "Gid"))
}

// checkHostIDsIn checks that every uid and gid of the processes is a host
// id of range [first, first+65536): never the host's root.
func checkHostIDsIn(t *testing.T, what string, pids []uint32, first uint32) {
	t.Helper()
	if len(pids) == 0 {
		t.Fatalf("%s: no processes", what)
	}
	for _, pid := range pids {
		uids, gids := hostIDs(t, pid)
		for _, id := range append(uids, gids...) {
			if id == 0 || id < uint64(first) || id >= uint64(first)+65536 {
				t.Errorf("%s: process %d has host ids uid %v gid %v, want all in %d-%d", what, pid, uids, gids, first, uint64(first)+65535)
			}
		}
	}
}

// rangeOf reads the host range of a container's user namespace from its
// process's uid_map.
func rangeOf(t *testing.T, pid uint32) uint32 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
		t.Fatalf("uid_map of %d = %q, want one range of 65536 from container id 0", pid, data)
	}
	n, _ := strconv.ParseUint(f[1], 10, 32)
	return uint32(n)
}

func usernsEntries(t *testing.T, c *harness.Containerd) []userns.Entry {
	t.Helper()
	a := &userns.Allocator{Dir: c.UsernsDir, First: c.UsernsFirst, Length: harness.UsernsSlots * userns.Size, Etc: "/etc"}
	entries, err := a.Entries()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestRootImageInUserNamespace: a root image whose entrypoint chowns a
// directory, drops to its own user with su and writes there runs under the
// default policy, as root only in a user namespace of its own: every
// process has host ids of its range (never 0), the image's files keep
// their owners through the idmapped rootfs and stay immutable, ping works
// in its own network namespace, seccomp and no-new-privileges are on, and
// the range is released with the container.
func TestRootImageInUserNamespace(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("userns-root")
	_, task := startTask(t, ctx, id, hardenedRT, oci.WithProcessArgs("sh", "-c", "("+chownAndDrop+") > /tmp/log 2>&1; echo ready > /tmp/ready; exec sleep 600"))
	out := waitReady(t, ctx, task)
	pids := taskPids(t, ctx, task)
	first := rangeOf(t, task.Pid())
	t.Logf("inside (host range %d):\n%s", first, out)
	checkHostIDsIn(t, "the container", pids, first)
	if first < cd.UsernsFirst || first >= cd.UsernsFirst+harness.UsernsSlots*65536 {
		t.Errorf("range %d is outside the shims' window from %d", first, cd.UsernsFirst)
	}
	for _, want := range []string{
		"app-uid=1000 owner=1000:1000", "root-uid=0 uid_map=0 " + strconv.Itoa(int(first)) + " 65536",
		"image-owner=0 home-owner=1000", "image=immutable", "chown-image=denied", "ping=ok",
		"CapEff=" + namespacedCaps, "NoNewPrivs=1", "Seccomp=2", "unshare=denied", "mount=denied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inside: no %q", want)
		}
	}
	entries := usernsEntries(t, cd)
	if !slices.ContainsFunc(entries, func(e userns.Entry) bool { return e.Owner.ID == id && e.HostID == first }) {
		t.Errorf("ranges %+v: none for %s at %d", entries, id, first)
	}
	// An exec runs in the container's user namespace, as its root.
	// containerd builds it from its stored spec: root, the default
	// capabilities.
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	exec, err := execIn(ctx, task, "x1", &specs.Process{Env: []string{"PATH=/bin"}, Args: []string{"/bin/sh", "-c", "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status; cat /proc/self/status"}, Cwd: "/",
		User: specs.User{UID: 0, GID: 0}, Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}})
	if err != nil || !strings.HasPrefix(exec, "0\n") || !strings.Contains(exec, " "+strconv.Itoa(int(first))+" ") || !strings.Contains(exec, "CapEff:\t"+namespacedCaps) ||
		!strings.Contains(exec, "NoNewPrivs:\t1") || !strings.Contains(exec, "Seccomp:\t2") {
		t.Errorf("exec: %v\n%s", err, exec)
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
		t.Fatal(err)
	}
	if entries := usernsEntries(t, cd); slices.ContainsFunc(entries, func(e userns.Entry) bool { return e.Owner.ID == id }) {
		t.Errorf("the range of %s outlived its task: %+v", id, entries)
	}
}

// TestUserNamespaceFilesOnTheHost: what a container in its user namespace
// creates on a host path is owned by its range on the host, and the
// host's own files there stay out of its reach.
func TestUserNamespaceFilesOnTheHost(t *testing.T) {
	require(t)
	dir := hostDir(t)
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts-file"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", `set -e
mkdir /srv/app && chown app:app /srv/app
su -s /bin/sh app -c 'echo x > /srv/app/f'
echo x > /srv/by-root
(echo y >> /srv/hosts-file) 2>/dev/null && echo host-file=writable || echo host-file=protected
(chown app /srv/hosts-file) 2>/dev/null && echo host-chown=ok || echo host-chown=denied
cat /proc/self/uid_map`}, withLevel("hostpaths"), bind(dir, "/srv"))
	if err != nil || res.Exit != 0 {
		t.Fatalf("run: %v exit %d\n%s%s", err, res.Exit, res.Stdout, res.Stderr)
	}
	f := strings.Fields(res.Stdout[strings.LastIndex(res.Stdout, "host-chown"):])
	first, _ := strconv.ParseUint(f[len(f)-2], 10, 32)
	for name, want := range map[string]uint64{"app": first + 1000, "app/f": first + 1000, "by-root": first} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if uint64(st.Uid) != want || uint64(st.Gid) != want {
			t.Errorf("%s is owned by %d:%d on the host, want %d:%d (the container's range)", name, st.Uid, st.Gid, want, want)
		}
	}
	for _, want := range []string{"host-file=protected", "host-chown=denied"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("no %q in:\n%s", want, res.Stdout)
		}
	}
	if first == 0 || first < uint64(cd.UsernsFirst) {
		t.Errorf("range %d", first)
	}
}

// waitReady waits until the container's init has written /tmp/ready, and
// returns what it logged in /tmp/log, read through execs.
func waitReady(t *testing.T, ctx context.Context, task containerd.Task) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := execIn(ectx, task, fmt.Sprintf("wait-%d", i), &specs.Process{Args: []string{"/bin/cat", "/tmp/ready"}, Cwd: "/"})
		cancel()
		if err == nil && strings.Contains(out, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not get ready: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := execIn(ctx, task, "log", &specs.Process{Args: []string{"/bin/cat", "/tmp/log"}, Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func taskPids(t *testing.T, ctx context.Context, task containerd.Task) []uint32 {
	t.Helper()
	ps, err := task.Pids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pids []uint32
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids
}

// podWithNetwork starts a pod with a network namespace of its own (the
// harness's loopback-only CNI network) on the hardened handler, with the
// pod's own user namespace when us is set (hostUsers: false).
func podWithNetwork(t *testing.T, rs runtime.RuntimeServiceClient, name, kns string, us *runtime.UserNamespace) (string, *runtime.PodSandboxConfig) {
	t.Helper()
	if !harness.HasPodNetwork() {
		t.Fatalf("no CNI plugins %v in %s: run make tools", harness.PodNetworkPlugins, harness.CNIBin())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: name, Uid: name + "-uid-" + strconv.Itoa(os.Getpid()), Namespace: kns},
		LogDirectory: t.TempDir(),
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_POD, UsernsOptions: us},
		}},
	}
	resp, err := rs.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "hardened"})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
		rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId})
	})
	return resp.PodSandboxId, cfg
}

// podContainer creates and starts a root busybox container in a pod with
// the host directory shared at /shared (when set).
func podContainer(t *testing.T, rs runtime.RuntimeServiceClient, podID string, podCfg *runtime.PodSandboxConfig, name, shared string, us *runtime.UserNamespace) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mounts []*runtime.Mount
	if shared != "" {
		mounts = append(mounts, &runtime.Mount{ContainerPath: "/shared", HostPath: shared})
	}
	// As the kubelet sends it for a pod without shareProcessNamespace.
	sc := kubeletDefaults(&runtime.LinuxContainerSecurityContext{
		NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_POD, Pid: runtime.NamespaceMode_CONTAINER, UsernsOptions: us}})
	resp, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: name},
			Image:    &runtime.ImageSpec{Image: harness.Busybox},
			Command:  []string{"sleep", "3600"},
			LogPath:  name + ".log",
			Mounts:   mounts,
			Linux:    &runtime.LinuxContainerConfig{SecurityContext: sc},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		t.Fatalf("StartContainer %s: %v", name, err)
	}
	return resp.ContainerId
}

func execSync(t *testing.T, rs runtime.RuntimeServiceClient, id, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", script}, Timeout: 50})
	if err != nil {
		t.Fatalf("ExecSync in %s: %v", id, err)
	}
	return string(out.Stdout) + string(out.Stderr)
}

// criPid is the host pid of a CRI container's process.
func criPid(t *testing.T, rs runtime.RuntimeServiceClient, id string) uint32 {
	t.Helper()
	st, err := rs.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid uint32 `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container %s's pid: %v %q", id, err, st.Info["info"])
	}
	return info.Pid
}

// TestPodsInUserNamespaces: each pod's root containers run in a user
// namespace on a range of the pod's own; a pod's containers share files
// (one range), two pods cannot touch each other's (different ranges), and
// a pod's range goes back when it is removed.
func TestPodsInUserNamespaces(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	shared := hostDir(t)
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	podA, cfgA := podWithNetwork(t, rs, "a", "userns-a", nil)
	podB, cfgB := podWithNetwork(t, rs, "b", "userns-b", nil)
	a1 := podContainer(t, rs, podA, cfgA, "a1", shared, nil)
	a2 := podContainer(t, rs, podA, cfgA, "a2", shared, nil)
	b1 := podContainer(t, rs, podB, cfgB, "b1", shared, nil)

	rangeA, rangeA2, rangeB := rangeOf(t, criPid(t, rs, a1)), rangeOf(t, criPid(t, rs, a2)), rangeOf(t, criPid(t, rs, b1))
	if rangeA != rangeA2 || rangeA == rangeB {
		t.Fatalf("ranges: a1 %d, a2 %d, b1 %d; want one per pod", rangeA, rangeA2, rangeB)
	}
	for name, id := range map[string]string{"a1": a1, "a2": a2, "b1": b1} {
		r := rangeA
		if name == "b1" {
			r = rangeB
		}
		checkHostIDsIn(t, name, []uint32{criPid(t, rs, id)}, r)
	}
	// Inside a pod's container: root, the namespaced capabilities (no
	// CAP_NET_RAW in the pod's network), and the pod's files.
	out := execSync(t, rs, a1, `id -u; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t'
echo a1 > /shared/a-file && chmod 644 /shared/a-file && mkdir /shared/a-dir && chmod 755 /shared/a-dir && echo created
(echo x > /probe) 2>/dev/null || echo root=readonly`)
	for _, want := range []string{"0\n", "CapEff:00000000800004eb", "Seccomp:2", "NoNewPrivs:1", "created", "root=readonly"} {
		if !strings.Contains(out, want) {
			t.Errorf("a1: no %q in:\n%s", want, out)
		}
	}
	// The exec's processes too have the pod's host ids.
	if out := execSync(t, rs, a1, "cat /proc/self/uid_map"); !strings.Contains(out, strconv.Itoa(int(rangeA))) {
		t.Errorf("exec's uid_map %q, want the pod's range %d", out, rangeA)
	}
	// Same pod: a2 writes a1's files.
	if out := execSync(t, rs, a2, `echo a2 >> /shared/a-file && touch /shared/a-dir/by-a2 && echo shared-ok`); !strings.Contains(out, "shared-ok") {
		t.Errorf("a2 cannot write its pod's files: %s", out)
	}
	// Another pod: b1 cannot.
	out = execSync(t, rs, b1, `(echo b1 >> /shared/a-file) 2>/dev/null && echo write=ok || echo write=denied
(touch /shared/a-dir/by-b1) 2>/dev/null && echo create=ok || echo create=denied
(chown 0 /shared/a-file) 2>/dev/null && echo chown=ok || echo chown=denied
(chmod 666 /shared/a-file) 2>/dev/null && echo chmod=ok || echo chmod=denied
(rm -f /shared/a-file) 2>/dev/null && [ ! -e /shared/a-file ] && echo rm=ok || echo rm=denied`)
	for _, want := range []string{"write=denied", "create=denied", "chown=denied", "chmod=denied", "rm=denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("b1 reached pod a's files: no %q in:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(filepath.Join(shared, "a-file"))
	if err != nil || string(data) != "a1\na2\n" {
		t.Errorf("a-file = %q, %v", data, err)
	}
	// The sandbox kept the host's user namespace (runc sets the pod's
	// network sysctls from it) and runs as 65534.
	entries := usernsEntries(t, cd)
	for _, pod := range []string{podA, podB} {
		if !slices.ContainsFunc(entries, func(e userns.Entry) bool { return e.Owner.ID == pod && e.Owner.Namespace == harness.CRINamespace }) {
			t.Errorf("no range recorded for pod %s: %+v", pod, entries)
		}
	}
	// A pod's range goes back when it is removed.
	ctx := context.Background()
	if _, err := rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: podB}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: podB}); err != nil {
		t.Fatal(err)
	}
	if entries := usernsEntries(t, cd); slices.ContainsFunc(entries, func(e userns.Entry) bool { return e.Owner.ID == podB }) {
		t.Errorf("pod b's range outlived it: %+v", entries)
	}
}

// TestHostUsersFalsePod: a pod that asks for its own user namespace
// (Kubernetes hostUsers: false, CRI UsernsOptions) through CRI keeps uid 0
// and its namespaced capabilities inside, with host ids of its range. The
// runtime is configured as deploy/containerd-hardened.toml ships it (no
// options table: containerd v2.4.2 cannot start such a pod otherwise).
func TestHostUsersFalsePod(t *testing.T) {
	require(t)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(testPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	c := harness.Start(t, harness.Options{PolicyPath: policyFile, NoConfigPath: true, ShimDir: shimDir})
	harness.Import(t, c, harness.CRINamespace, harness.Busybox, harness.Pause)
	rs, _ := c.CRI(t)
	// As the kubelet picks one: 65536 ids at a multiple of 65536, outside
	// the shims' window.
	first := uint32(0x60000000) + uint32(os.Getpid()%256)*65536
	us := &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD,
		Uids: []*runtime.IDMapping{{HostId: first, ContainerId: 0, Length: 65536}},
		Gids: []*runtime.IDMapping{{HostId: first, ContainerId: 0, Length: 65536}}}
	pod, cfg := podWithNetwork(t, rs, "own", "userns-own", us)
	id := podContainer(t, rs, pod, cfg, "app", "", us)
	out := execSync(t, rs, id, `id -u; cat /proc/self/uid_map | tr -s ' '; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t'
(echo x > /probe) 2>/dev/null || echo root=readonly`)
	t.Logf("inside:\n%s", out)
	for _, want := range []string{"0\n", " 0 " + strconv.Itoa(int(first)) + " 65536", "CapEff:00000000800004eb", "Seccomp:2", "NoNewPrivs:1", "root=readonly"} {
		if !strings.Contains(out, want) {
			t.Errorf("inside: no %q", want)
		}
	}
	checkHostIDsIn(t, "the pod's container", []uint32{criPid(t, rs, id)}, first)
	// Its range is recorded, so that the shims hand out none over it.
	a := &userns.Allocator{Dir: c.UsernsDir, First: c.UsernsFirst, Length: harness.UsernsSlots * userns.Size, Etc: "/etc"}
	entries, err := a.Entries()
	if err != nil || !slices.ContainsFunc(entries, func(e userns.Entry) bool { return e.Own && e.HostID == first && e.Owner.ID == pod }) {
		t.Errorf("ranges %+v %v: the pod's own not recorded", entries, err)
	}
}

// idProbe prints the user a container runs as and the uid map of its user
// namespace: what the tests that only need to know a container ran
// hardened check with whoAmI.
const idProbe = "id -u; cat /proc/self/uid_map"

// rootInItsUserNamespace is what whoAmI says of a root image's process
// under the default level: root in a user namespace of its own, whose ids
// are a host range other than the host's root.
const rootInItsUserNamespace = "root in its user namespace"

// whoAmI reads idProbe's output: rootInItsUserNamespace, the uid of a
// process in the host's user namespace ("65534"), or the output as it is.
func whoAmI(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return strings.TrimSpace(out)
	}
	m := strings.Fields(lines[1])
	switch {
	case len(m) != 3:
		return strings.TrimSpace(out)
	case m[0] == "0" && m[1] == "0" && m[2] == "4294967295":
		return lines[0] // the host's user namespace
	case lines[0] == "0" && m[0] == "0" && m[1] != "0" && m[2] == "65536":
		return rootInItsUserNamespace
	}
	return strings.TrimSpace(out)
}

// inShimsWindow reports whether a host id is in the window of the test
// containerd's shims' user namespace ranges.
func inShimsWindow(id uint64) bool {
	return id >= uint64(cd.UsernsFirst) && id < uint64(cd.UsernsFirst)+harness.UsernsSlots*65536
}

func parseUint(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// hardenedNoUserns is the benchmark's lifecycle variant of hardened
// without root in a user namespace (level no-userns: user.namespace off,
// the root image as 65534), beside hardened's default (root in its user
// namespace): the difference is the user namespace's cost.
const hardenedNoUserns = "hardened, user.namespace off"

// lifecycleVariant is how the benchmark runs one of its lifecycle
// variants: the runtime, spec options and rootfs snapshot. runc given the
// hardened spec gets, for the spec's user namespace, a snapshot labelled
// with its mappings, as containerd's CRI prepares one for a hostUsers:
// false pod: the overlayfs snapshotter then has the rootfs idmapped, as
// the shim does.
func lifecycleVariant(v string, hardSpec *specs.Spec) (string, []oci.SpecOpts, func(string, containerd.Image, ...snapshots.Opt) containerd.NewContainerOpts) {
	if parts, ok := strings.CutPrefix(v, runcHardSpec+"-"); ok {
		hardSpec, v = withoutParts(hardSpec, strings.Split(parts, "-")), runcHardSpec
	}
	switch v {
	case runcHardSpec:
		snap := containerd.WithNewSnapshot
		if l := hardSpec.Linux; len(l.UIDMappings) == 1 && len(l.GIDMappings) == 1 {
			idmap := func(m specs.LinuxIDMapping) string { return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size) }
			labels := snapshots.WithLabels(map[string]string{
				snapshots.LabelSnapshotUIDMapping: idmap(l.UIDMappings[0]), snapshots.LabelSnapshotGIDMapping: idmap(l.GIDMappings[0])})
			snap = func(id string, img containerd.Image, _ ...snapshots.Opt) containerd.NewContainerOpts {
				return containerd.WithNewSnapshot(id, img, labels)
			}
		}
		return runcRT, []oci.SpecOpts{withSpecOf(hardSpec)}, snap
	case hardenedNoUserns:
		return hardenedRT, []oci.SpecOpts{withLevel("no-userns")}, containerd.WithNewSnapshot
	}
	return v, nil, containerd.WithNewSnapshot
}

// withoutParts is a copy of the hardened spec s without some of what the
// shim gave it, for TestPhases' variants runc+hardened-spec-<part>[-<part>...]
// that show what each part costs runc: seccomp (the filter), userns (the
// user namespace: 65534 instead), mounts (the /tmp tmpfs and binds), masked
// (masked and read-only paths), sysctl.
func withoutParts(s *specs.Spec, parts []string) *specs.Spec {
	cp := *s
	l, p := *s.Linux, *s.Process
	cp.Linux, cp.Process = &l, &p
	for _, part := range parts {
		switch part {
		case "seccomp":
			l.Seccomp = nil
		case "userns":
			l.UIDMappings, l.GIDMappings = nil, nil
			l.Namespaces = slices.DeleteFunc(slices.Clone(l.Namespaces), func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
			p.User = specs.User{UID: 65534, GID: 65534}
		case "mounts":
			cp.Mounts = slices.DeleteFunc(slices.Clone(cp.Mounts), func(m specs.Mount) bool {
				return m.Destination == "/tmp" || m.Destination == "/var/tmp" || m.Type == "bind"
			})
		case "masked":
			l.MaskedPaths, l.ReadonlyPaths = nil, nil
		case "sysctl":
			l.Sysctl = nil
		}
	}
	return &cp
}

// TestWindowIDRefusedThroughCRI: a pod that asks to run as a host id of
// the runtime's window for pods' user namespaces (another pod's root) is
// refused, with the field and the fix.
func TestWindowIDRefusedThroughCRI(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	podID, cfg := podWithNetwork(t, rs, "w", "userns-window", nil)
	sc := &runtime.LinuxContainerSecurityContext{RunAsUser: &runtime.Int64Value{Value: int64(cd.UsernsFirst)}}
	_, err := startContainer(t, rs, podID, cfg, "as-another-pods-root", sc)
	if err == nil || !strings.Contains(err.Error(), "process.user.uid="+strconv.Itoa(int(cd.UsernsFirst))) || !strings.Contains(err.Error(), "runtime's window for pods' user namespaces") {
		t.Errorf("runAsUser %d = %v, want the refusal", cd.UsernsFirst, err)
	}
}

// TestPodRangeKeptWhenPauseDies: when a pod's pause process dies, the CRI
// plugin deletes the sandbox's task at once, while the pod's containers
// run on in its range until the kubelet stops them: the range stays
// reserved (no other pod can be given their host ids) until the pod's last
// container is gone.
func TestPodRangeKeptWhenPauseDies(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	ctx := context.Background()
	podID, cfg := podWithNetwork(t, rs, "pause-dies", "default", nil)
	app := podContainer(t, rs, podID, cfg, "app", "", nil)
	st, err := rs.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("pause's pid: %v %q", err, st.Info["info"])
	}
	owned := func() bool {
		return slices.ContainsFunc(usernsEntries(t, cd), func(e userns.Entry) bool { return e.Owner.ID == podID })
	}
	if !owned() {
		t.Fatal("no range reserved for the pod")
	}
	if err := syscall.Kill(info.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The CRI plugin deletes the sandbox's task: its bundle goes.
	bundle := filepath.Join(cd.State, "io.containerd.runtime.v2.task", harness.CRINamespace, podID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(bundle); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sandbox's task was not deleted after pause died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cs, err := rs.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: app})
	if err != nil || cs.Status.State != runtime.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("the pod's app container: %v %v, want it running", cs, err)
	}
	if !owned() {
		t.Fatal("the pod's range was released with its sandbox's task while its app container still runs in it")
	}
	if _, err := rs.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: app}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: app}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for owned() {
		if time.Now().After(deadline) {
			t.Fatal("the pod's range outlived its last container")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
