package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/profiles"
)

// pod starts a CNI-less (host network) pod with the hardened runtime
// handler, as the kubelet does for runtimeClassName: hardened.
func pod(t *testing.T, rs runtime.RuntimeServiceClient, name string, privileged bool) (string, *runtime.PodSandboxConfig, error) {
	t.Helper()
	return podWith(t, rs, name, "hardened", privileged)
}

// podWith starts a host-network pod with a runtime handler.
func podWith(t *testing.T, rs runtime.RuntimeServiceClient, name, handler string, privileged bool) (string, *runtime.PodSandboxConfig, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "hostnet-" + name},
		LogDirectory: t.TempDir(),
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
			Privileged:       privileged,
		}},
	}
	resp, err := rs.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return "", cfg, err
	}
	t.Cleanup(func() {
		ctx := context.Background()
		rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
		rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId})
	})
	return resp.PodSandboxId, cfg, nil
}

func startContainer(t *testing.T, rs runtime.RuntimeServiceClient, podID string, podCfg *runtime.PodSandboxConfig, name string, sc *runtime.LinuxContainerSecurityContext) (string, error) {
	t.Helper()
	return startImage(t, rs, podID, podCfg, name, harness.Busybox, sc)
}

// startImage creates and starts a container of image in a pod, as the
// kubelet does.
func startImage(t *testing.T, rs runtime.RuntimeServiceClient, podID string, podCfg *runtime.PodSandboxConfig, name, image string, sc *runtime.LinuxContainerSecurityContext) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: name},
			Image:    &runtime.ImageSpec{Image: image},
			Command:  []string{"sleep", "3600"},
			LogPath:  name + ".log",
			Linux:    &runtime.LinuxContainerConfig{SecurityContext: kubeletDefaults(sc)},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainer: %w", err)
	}
	if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		return resp.ContainerId, fmt.Errorf("StartContainer: %w", err)
	}
	return resp.ContainerId, nil
}

// kubeletDefaults adds what the kubelet always sends for a container that
// is not privileged: the default masked and read-only paths.
func kubeletDefaults(sc *runtime.LinuxContainerSecurityContext) *runtime.LinuxContainerSecurityContext {
	if sc == nil {
		sc = &runtime.LinuxContainerSecurityContext{}
	}
	if !sc.Privileged {
		sc.MaskedPaths = profiles.MaskedPaths
		sc.ReadonlyPaths = profiles.ReadonlyPaths
	}
	return sc
}

// TestCRI drives containerd's CRI plugin like the kubelet does for a pod
// with runtimeClassName: hardened.
func TestCRI(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "web", false)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	id, err := startContainer(t, rs, podID, podCfg, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "id -u; cat /proc/self/status; touch /probe 2>&1; touch /tmp/x && echo tmp-ok"}, Timeout: 30})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	stdout := string(out.Stdout)
	if !strings.HasPrefix(stdout, "65534\n") {
		t.Errorf("ExecSync runs as %q, want 65534", strings.SplitN(stdout, "\n", 2)[0])
	}
	for f, want := range map[string]string{"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"} {
		if v := statusField(stdout, f); v != want {
			t.Errorf("ExecSync %s = %s, want %s", f, v, want)
		}
	}
	if !strings.Contains(stdout, "Read-only file system") || !strings.Contains(stdout, "tmp-ok") {
		t.Errorf("root not read-only or /tmp not writable:\n%s", stdout)
	}
	// The container's own process too (PID 1 of the container: sleep).
	out, err = rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "grep -E '^(Uid|CapEff|Seccomp):' /proc/1/status"}, Timeout: 30})
	if err != nil || !strings.Contains(string(out.Stdout), "Uid:\t65534") || !strings.Contains(string(out.Stdout), "Seccomp:\t2") {
		t.Errorf("container process: %v\n%s", err, out.GetStdout())
	}

	// The image declares VOLUME /data: the CRI plugin bind-mounts a
	// directory of its own below containerd's root, which the container
	// may have (the mounts rule judges it with the root computed from the
	// bundle, and the pod's identity checked against containerd's records).
	data, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", harness.CRINamespace, id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	volumes := filepath.Join(cd.Root, "io.containerd.grpc.v1.cri", "containers", id, "volumes") + "/"
	found := false
	for _, m := range spec.Mounts {
		found = found || m.Destination == "/data" && strings.HasPrefix(m.Source, volumes)
	}
	if !found {
		t.Errorf("no bind mount of the image's VOLUME /data from %s*: %+v", volumes, spec.Mounts)
	}

	// A container asking for CAP_SYS_ADMIN is refused with the reason.
	_, err = startContainer(t, rs, podID, podCfg, "admin", &runtime.LinuxContainerSecurityContext{
		Capabilities: &runtime.Capability{AddCapabilities: []string{"SYS_ADMIN"}},
	})
	if err == nil || !strings.Contains(err.Error(), "rule capabilities") || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
		t.Errorf("CAP_SYS_ADMIN container: %v, want a refusal naming the rule", err)
	} else {
		t.Logf("refused: %v", err)
	}
}

// TestCRIPrivilegedPod: a privileged container (in a privileged pod, as
// Kubernetes requires) is refused with the reason.
func TestCRIPrivilegedPod(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "priv", true)
	if err != nil {
		if !strings.Contains(err.Error(), "rule privileged") {
			t.Fatalf("privileged pod: %v, want it to run or a refusal by rule privileged", err)
		}
		t.Logf("privileged pod refused at RunPodSandbox: %v", err)
		return
	}
	_, err = startContainer(t, rs, podID, podCfg, "priv", &runtime.LinuxContainerSecurityContext{Privileged: true})
	if err == nil || !strings.Contains(err.Error(), "rule privileged") || !strings.Contains(err.Error(), "allowPrivileged") {
		t.Fatalf("privileged container: %v, want a refusal by rule privileged", err)
	}
	t.Logf("refused: %v", err)
}

// TestCRIRuntimeFeatures: the CRI plugin learns each handler's features by
// running its shim with -info and the handler's options on stdin (for
// hardened, runtimeoptions.Options with ConfigPath); the kubelet refuses
// hostUsers: false and recursiveReadOnly pods on a handler that reports
// none. hardened must report what runc reports.
func TestCRIRuntimeFeatures(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := rs.Status(ctx, &runtime.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	handlers := map[string]*runtime.RuntimeHandlerFeatures{}
	for _, h := range st.GetRuntimeHandlers() {
		handlers[h.GetName()] = h.GetFeatures()
	}
	runc, hardened := handlers["runc"], handlers["hardened"]
	t.Logf("runc: %v; hardened: %v", runc, hardened)
	if !runc.GetUserNamespaces() || !runc.GetRecursiveReadOnlyMounts() {
		t.Fatalf("runc handler features %v: this host should support user namespaces and rro", runc)
	}
	if !hardened.GetUserNamespaces() || !hardened.GetRecursiveReadOnlyMounts() {
		t.Errorf("hardened handler (ConfigPath options) features %v, want those of runc (%v)", hardened, runc)
	}
}

// TestCRIPodGroups: a root-image container moved to the level's user keeps
// the pod's supplementalGroups and fsGroup (the kubelet sends both as CRI
// supplemental_groups), loses root's groups from the image's /etc/group
// (wheel, 10) and group 0; its execs get the same groups. Under either
// supplementalGroupsPolicy.
func TestCRIPodGroups(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	for _, policy := range []runtime.SupplementalGroupsPolicy{runtime.SupplementalGroupsPolicy_Merge, runtime.SupplementalGroupsPolicy_Strict} {
		t.Run(policy.String(), func(t *testing.T) {
			podID, podCfg, err := pod(t, rs, "groups-"+strings.ToLower(policy.String()), false)
			if err != nil {
				t.Fatalf("RunPodSandbox: %v", err)
			}
			id, err := startContainer(t, rs, podID, podCfg, "groups-"+strings.ToLower(policy.String()), &runtime.LinuxContainerSecurityContext{
				SupplementalGroups: []int64{1234, 5678, 2000}, SupplementalGroupsPolicy: policy,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "id -u; id -G; for p in $(pidof sleep); do [ $p = 1 ] || grep ^Groups: /proc/$p/status; done"}, Timeout: 30})
			if err != nil {
				t.Fatalf("ExecSync: %v", err)
			}
			got := strings.Split(strings.TrimSpace(string(out.Stdout)), "\n")
			t.Logf("%q %s", got, out.Stderr)
			if len(got) != 3 || got[0] != "65534" {
				t.Fatalf("exec output %q, want uid 65534, its groups, the groups of the container's sleep (PID 1 is the pod's pause, also a sleep)", got)
			}
			if got[1] != "65534 1234 2000 5678" {
				t.Errorf("exec groups %q, want the level's gid and the pod's groups: 65534 1234 2000 5678 (no 0, no wheel)", got[1])
			}
			if f := strings.Fields(got[2]); !slices.Equal(f, []string{"Groups:", "1234", "2000", "5678"}) {
				t.Errorf("container process %q, want Groups: 1234 2000 5678", got[2])
			}
		})
	}
}
