package shim

import (
	"encoding/json"
	"fmt"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
)

// The CRI annotations of a container's spec that say which pod it belongs
// to (containerd v2.4.2, internal/cri/annotations), and what the CRI
// plugin's podsandbox controller records on a pod's sandbox (pause)
// container (internal/cri/server/podsandbox/sandbox_run.go): the label
// io.cri-containerd.kind=sandbox and the extension
// io.cri-containerd.sandbox.metadata, the pod's sandboxstore.Metadata as
// JSON (its id, and the PodSandboxConfig the kubelet sent).
const (
	criContainerType       = "io.kubernetes.cri.container-type"
	criSandboxID           = "io.kubernetes.cri.sandbox-id"
	criSandboxUID          = "io.kubernetes.cri.sandbox-uid"
	criSandboxNamespace    = "io.kubernetes.cri.sandbox-namespace"
	criKindLabel           = "io.cri-containerd.kind"
	criSandboxMetadataKey  = "io.cri-containerd.sandbox.metadata"
	criSandboxMetadataType = "github.com/containerd/cri/pkg/store/sandbox/Metadata"
)

// podClaim is the CRI pod a container's annotations say it belongs to.
// Any containerd API client can set annotations, so a claim is used only
// once checkPodClaim has found containerd's records to say the same.
type podClaim struct {
	// Type is "sandbox" (the pod's pause container) or "container".
	Type      string
	SandboxID string
	PodUID    string
	Namespace string
}

// podClaimOf reads the claim; ok is false when the annotations claim no
// pod at all (a container outside Kubernetes).
func podClaimOf(annotations map[string]string) (c podClaim, ok bool) {
	c = podClaim{Type: annotations[criContainerType], SandboxID: annotations[criSandboxID],
		PodUID: annotations[criSandboxUID], Namespace: annotations[criSandboxNamespace]}
	return c, c != podClaim{}
}

// checkPodClaim checks a container's pod claim against containerd's
// records; nil means every one of these holds:
//
//   - the annotations name a container type (sandbox or container), a
//     sandbox id, a pod uid and a Kubernetes namespace;
//   - for a sandbox (pause) container, the sandbox id is its own id; for
//     any other container, containerd's record of the container names that
//     sandbox (the record's sandbox field, which the CRI plugin sets);
//   - containerd has, in the same namespace, a record of the sandbox's
//     container (sb; the container itself for a sandbox) that the CRI
//     plugin made a sandbox: labelled io.cri-containerd.kind=sandbox, with
//     the CRI plugin's metadata of the pod, whose id, pod uid and
//     Kubernetes namespace are those claimed.
//
// sb is nil when containerd has no such container.
//
// These records are what the CRI plugin writes; any client of
// containerd's API can write them too, so a claim that checks out is
// consistent with containerd's records, not proof that the kubelet made
// the pod.
func checkPodClaim(c podClaim, ctr, sb *containersapi.Container) error {
	if c.SandboxID == "" || c.PodUID == "" || c.Namespace == "" {
		return fmt.Errorf("annotations %s, %s and %s must all be set", criSandboxID, criSandboxUID, criSandboxNamespace)
	}
	switch c.Type {
	case "sandbox":
		if c.SandboxID != ctr.GetID() {
			return fmt.Errorf("a sandbox container claims sandbox %s, not its own id", c.SandboxID)
		}
	case "container":
		if ctr.GetSandbox() != c.SandboxID {
			return fmt.Errorf("containerd's record of the container names sandbox %q, not %s", ctr.GetSandbox(), c.SandboxID)
		}
	default:
		return fmt.Errorf("annotation %s is %q, not sandbox or container", criContainerType, c.Type)
	}
	if sb == nil {
		return fmt.Errorf("containerd has no sandbox container %s in this namespace", c.SandboxID)
	}
	if sb.GetLabels()[criKindLabel] != "sandbox" {
		return fmt.Errorf("container %s is not a CRI sandbox (label %s)", c.SandboxID, criKindLabel)
	}
	md := sb.GetExtensions()[criSandboxMetadataKey]
	if md.GetTypeUrl() != criSandboxMetadataType {
		return fmt.Errorf("sandbox %s has no CRI metadata", c.SandboxID)
	}
	var meta struct {
		Version  string
		Metadata struct {
			ID     string
			Config struct {
				Metadata struct {
					UID       string `json:"uid"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
		}
	}
	if err := json.Unmarshal(md.GetValue(), &meta); err != nil {
		return fmt.Errorf("sandbox %s: CRI metadata: %w", c.SandboxID, err)
	}
	pod := meta.Metadata.Config.Metadata
	switch {
	case meta.Version != "v1":
		return fmt.Errorf("sandbox %s: CRI metadata of version %q", c.SandboxID, meta.Version)
	case meta.Metadata.ID != c.SandboxID:
		return fmt.Errorf("sandbox %s: CRI metadata of sandbox %q", c.SandboxID, meta.Metadata.ID)
	case pod.UID != c.PodUID:
		return fmt.Errorf("sandbox %s is pod uid %q, not %q", c.SandboxID, pod.UID, c.PodUID)
	case pod.Namespace != c.Namespace:
		return fmt.Errorf("sandbox %s is in Kubernetes namespace %q, not %q", c.SandboxID, pod.Namespace, c.Namespace)
	}
	return nil
}
