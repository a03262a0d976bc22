package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestObserverContainer: the installer DaemonSet runs `hardenctl observe`
// with what it needs and nothing more: the host's pid and network
// namespaces (audit multicast and process events are the host network
// namespace's), AUDIT_READ and NET_ADMIN only, containerd's run directory
// at its host path (task events name bundles by it), the metrics port and
// a readiness probe on /healthz.
func TestObserverContainer(t *testing.T) {
	var ds *appsv1.DaemonSet
	for _, list := range objects(t) {
		for _, o := range list {
			if d, ok := o.(*appsv1.DaemonSet); ok && d.Name == "hardened-installer" {
				ds = d
			}
		}
	}
	if ds == nil {
		t.Fatal("no installer DaemonSet")
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostPID || !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostPID %v hostNetwork %v dnsPolicy %s", pod.HostPID, pod.HostNetwork, pod.DNSPolicy)
	}
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == "observe" })
	if i < 0 {
		t.Fatal("no observe container")
	}
	c := pod.Containers[i]
	cmd := strings.Join(c.Command, " ")
	if !strings.HasPrefix(cmd, "hardenctl observe ") || !strings.Contains(cmd, "--listen=:9627") || !strings.Contains(cmd, "--address=/run/containerd/containerd.sock") {
		t.Errorf("command %q", cmd)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"AUDIT_READ", "NET_ADMIN"}) {
		t.Errorf("securityContext %+v", sc)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/run/containerd" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}
	vi := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[0].Name })
	if vi < 0 || pod.Volumes[vi].HostPath == nil || pod.Volumes[vi].HostPath.Path != "/run/containerd" {
		t.Errorf("volume of %s: %+v", c.VolumeMounts[0].Name, pod.Volumes)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9627 || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil ||
		c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("ports %+v probe %+v", c.Ports, c.ReadinessProbe)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory limit")
	}
}
