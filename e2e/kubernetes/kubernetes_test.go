package kubernetes

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/e2e"
	"github.com/hardened-runtime/hardened/integration/harness"
)

// Env enables TestKubernetes (`make e2e-kubernetes` sets it).
const Env = "HARDENED_E2E_KUBERNETES"

// KubeletRoot is the kubelet's root directory: the usual one, on a tmpfs
// private to the run's mount namespace (scripts/netns-run.sh with
// HARDENED_PRIVATE_DIRS), so that the mounts rule sees pod volumes where
// it sees them on a node.
const KubeletRoot = "/var/lib/kubelet"

// row is one line of the result table.
type row struct {
	Check, Result, Detail string
}

// TestKubernetes starts a single-node cluster on the tests' private
// containerd with the hardened runtime (deploy/policy.yaml) and its
// RuntimeClass (deploy/kubernetes/runtimeclass.yaml), runs pods on it as a
// user would, and prints what each check saw: exec, logs and probes of a
// web server, an emptyDir shared through fsGroup, a refused privileged pod
// and a refused hostNetwork pod as `kubectl describe` shows them, and a
// hostUsers: false pod.
func TestKubernetes(t *testing.T) {
	if os.Getenv(Env) == "" {
		t.Skipf("skipping: set %s=1 or run `make e2e-kubernetes`", Env)
	}
	harness.Require(t)
	e2e.RequirePrivateNetwork(t)
	if !strings.Contains(" "+os.Getenv("HARDENED_PRIVATE_DIRS")+" ", " "+KubeletRoot+" ") {
		t.Fatalf("%s is not private to this run (HARDENED_PRIVATE_DIRS=%q): run make e2e-kubernetes", KubeletRoot, os.Getenv("HARDENED_PRIVATE_DIRS"))
	}
	progs := e2e.BuildPrograms(t)
	images, err := e2e.Images(progs)
	if err != nil {
		t.Fatal(err)
	}
	images = append(images, InstallerImage(t, progs))
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	e2e.Push(t, reg, images)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(harness.RemoveShim)
	policyPath := filepath.Join(harness.RepoRoot(), "deploy", "policy.yaml")
	// Configured as deploy/containerd-hardened.toml: no options (the shim
	// reads the policy at its path, $HARDENED_POLICY here).
	cd := harness.Start(t, harness.Options{PolicyPath: policyPath, NoConfigPath: true, ShimDir: shimDir, BeforeStart: e2e.CNIFor, SandboxImage: e2e.SandboxImage})
	// A hostUsers: false pod's processes (host uids of their own range)
	// must reach their bundle below containerd's state directory.
	for _, d := range []string{cd.Dir, cd.State} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	e2e.Mirror(t, cd, reg.Addr())

	begin := time.Now()
	cl := StartCluster(t, cd.Address, KubeletRoot)
	t.Logf("e2e: node %s Ready in %v", NodeName, time.Since(begin).Round(time.Second))

	var rows []row
	add := func(check string, err error, detail string) {
		r := row{Check: check, Result: "ok", Detail: detail}
		if err != nil {
			r.Result = "FAIL"
			r.Detail = strings.TrimSpace(detail + " " + err.Error())
			t.Errorf("%s: %v (%s)", check, err, detail)
		}
		rows = append(rows, r)
		t.Logf("e2e: %s: %s: %s", check, r.Result, r.Detail)
	}

	// The installer DaemonSet of deploy/kubernetes (with the RuntimeClass,
	// RBAC and policy ConfigMap), its host root and restart replaced.
	nodeRoot := NodeRoot(t)
	detail, err := runInstaller(t, cl, nodeRoot, cd)
	add("DaemonSet installer (deploy/kubernetes; host root, restart and containerd address replaced): installs, labels the node, observer ready", err, detail)
	if out, _ := cl.Kubectl(t, "get", "node", NodeName, "-o", "jsonpath={.metadata.labels.hardened\\.dev/runtime}"); out != "installed" {
		// So the other checks still run: what the installer's last step does.
		rc := filepath.Join(harness.RepoRoot(), "deploy", "kubernetes", "runtimeclass.yaml")
		cl.Kubectl(t, "apply", "-f", rc)
		if _, err := cl.Kubectl(t, "label", "node", NodeName, "hardened.dev/runtime=installed", "--overwrite"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Kubectl(t, "create", "namespace", "e2e"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(t, time.Minute, "get", "serviceaccount", "default", "-n", "e2e"); err != nil {
		t.Fatal(err)
	}

	if _, err := cl.KubectlIn(t, []byte(pods), "apply", "-n", "e2e", "-f", "-"); err != nil {
		t.Fatal(err)
	}

	// web: probes, exec, logs.
	err = waitReady(t, cl, "e2e", "web", 3*time.Minute)
	add("nginx pod Ready (httpGet readiness and exec liveness probes)", err, podSummary(t, cl, "web"))
	// A root image: root in a user namespace of its own (the pod's range),
	// with the namespaced capabilities (no CAP_NET_RAW in the pod's
	// network namespace, which its sandbox owns).
	out, err := cl.Kubectl(t, "exec", "-n", "e2e", "web", "--", "sh", "-c", "id; cat /proc/1/uid_map; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/1/status; touch /probe 2>&1; echo >/var/cache/nginx/x && echo cache-writable")
	detail = oneLine(out)
	if err == nil {
		err = expect(out, "uid=0(root)", "CapEff:\t00000000800004eb", "NoNewPrivs:\t1", "Seccomp:\t2", "Read-only file system", "cache-writable")
		if regexp.MustCompile(`(?m)^\s*0\s+0\s+4294967295\s*$`).MatchString(out) {
			err = fmt.Errorf("the pod runs in the host's user namespace")
		}
	}
	add("kubectl exec: hardened process and exec (root in its user namespace, caps, seccomp, read-only root, level web's writable path)", err, detail)
	out, err = cl.Kubectl(t, "logs", "-n", "e2e", "web")
	if err == nil {
		err = expect(out, "serving http on :80 (uid 0)")
	}
	add("kubectl logs", err, oneLine(out))

	// emptyDir shared through fsGroup with a root-image container.
	err = waitReady(t, cl, "e2e", "volume", 3*time.Minute)
	out, lerr := cl.Kubectl(t, "logs", "-n", "e2e", "volume", "-c", "reader")
	if err == nil {
		err = lerr
	}
	if err == nil {
		err = expect(out, "secret-of-the-pod", "groups: 65534 2000 3000")
	}
	add("emptyDir with fsGroup: a root-image container reads the group-readable file of another user", err, oneLine(out))

	// hostUsers: false.
	err = waitReady(t, cl, "e2e", "userns", 3*time.Minute)
	out, lerr = cl.Kubectl(t, "logs", "-n", "e2e", "userns")
	if err == nil {
		err = lerr
	}
	if err == nil {
		err = expect(out, "uid=0(root)")
		if regexp.MustCompile(`(?m)^\s*0\s+0\s+4294967295\s*$`).MatchString(out) {
			err = fmt.Errorf("the pod runs in the host's user namespace")
		}
	}
	add("hostUsers: false pod runs, in a user namespace of its own", err, oneLine(out)+" "+podSummary(t, cl, "userns"))

	// A privileged pod: refused; what the user sees.
	reason, msg, restarts, err := waitRefused(t, cl, "privileged", 2*time.Minute)
	if err == nil {
		err = expect(msg, "rule privileged", "allowPrivileged")
	}
	add("privileged pod refused: container state", err, fmt.Sprintf("reason %s, restarts %d: %s", reason, restarts, msg))
	desc, _ := cl.Kubectl(t, "describe", "pod", "-n", "e2e", "privileged")
	line := grepLine(desc, "refused by level")
	add("privileged pod: kubectl describe shows", expect(line, "refused by level restricted: rule privileged"), line)

	// A hostNetwork pod: refused at RunPodSandbox, naming hostNetwork.
	desc, err = waitEvent(t, cl, "hostnet", "refused by level", 2*time.Minute)
	line = grepLine(desc, "refused by level")
	if err == nil {
		err = expect(line, "linux.namespaces[network]", "hostNetwork: true", "remove hostNetwork: true from the pod")
		if strings.Contains(line, "hostUts") || strings.Contains(line, "and 1 more") {
			err = fmt.Errorf("names hostUts or hides the network in \"and 1 more\"")
		}
	}
	add("hostNetwork pod refused: kubectl describe shows", err, line)

	printTable(t, rows)
}

// pods are the e2e's pods, all on the hardened RuntimeClass.
const pods = `
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  runtimeClassName: hardened
  containers:
  - name: nginx
    image: docker.io/library/nginx:latest
    ports: [{containerPort: 80}]
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 2
    livenessProbe:
      exec: {command: [cat, /run/nginx.pid]}
      periodSeconds: 5
---
apiVersion: v1
kind: Pod
metadata: {name: volume}
spec:
  runtimeClassName: hardened
  securityContext:
    fsGroup: 2000
    supplementalGroups: [3000]
  volumes:
  - name: data
    emptyDir: {}
  initContainers:
  - name: writer
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    securityContext: {runAsUser: 1000, runAsGroup: 1000}
    command: [sh, -c, 'umask 027 && echo secret-of-the-pod > /data/f && ls -ln /data']
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: reader
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: [sh, -c, 'ls -ln /data; cat /data/f; echo "groups: $(id -G)"; exec sleep 3600']
    volumeMounts: [{name: data, mountPath: /data}]
---
apiVersion: v1
kind: Pod
metadata: {name: userns}
spec:
  runtimeClassName: hardened
  hostUsers: false
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: [sh, -c, 'cat /proc/self/uid_map; id; exec sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  runtimeClassName: hardened
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: [sleep, "3600"]
    securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  runtimeClassName: hardened
  hostNetwork: true
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: [sleep, "3600"]
`

// podStatus is what the checks read of a pod.
type podStatus struct {
	Status struct {
		Phase      string
		Conditions []struct{ Type, Status string }
		InitContainerStatuses,
		ContainerStatuses []struct {
			Name         string
			Ready        bool
			RestartCount int
			State        map[string]struct {
				Reason, Message string
				ExitCode        int
			}
			LastState map[string]struct {
				Reason, Message string
				ExitCode        int
			}
		}
	}
}

func getPod(t *testing.T, cl *Cluster, ns, name string) (podStatus, error) {
	var p podStatus
	out, err := cl.Kubectl(t, "get", "pod", "-n", ns, name, "-o", "json")
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal([]byte(out), &p)
}

func waitReady(t *testing.T, cl *Cluster, ns, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		p, err := getPod(t, cl, ns, name)
		if err == nil {
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			desc, _ := cl.Kubectl(t, "describe", "pod", "-n", ns, name)
			return fmt.Errorf("pod %s not Ready after %v (%v):\n%s", name, timeout, err, desc)
		}
		time.Sleep(2 * time.Second)
	}
}

// waitRefused waits until the pod's container is waiting with a reason
// other than ContainerCreating, and returns that reason, the refusal
// message (from the waiting state or the last terminated state) and the
// restart count after a while, so a climbing count shows.
func waitRefused(t *testing.T, cl *Cluster, name string, timeout time.Duration) (reason, msg string, restarts int, err error) {
	deadline := time.Now().Add(timeout)
	var seen time.Time
	for {
		p, gerr := getPod(t, cl, "e2e", name)
		if gerr == nil && len(p.Status.ContainerStatuses) > 0 {
			cs := p.Status.ContainerStatuses[0]
			if w, ok := cs.State["waiting"]; ok && w.Reason != "ContainerCreating" && w.Reason != "" {
				reason, msg, restarts = w.Reason, w.Message, cs.RestartCount
				if l, ok := cs.LastState["terminated"]; ok && l.Message != "" {
					msg = l.Reason + ": " + l.Message
				}
				if seen.IsZero() {
					seen = time.Now()
				}
				// Watch for 40 seconds: does the kubelet keep restarting it?
				if time.Since(seen) > 40*time.Second && strings.Contains(msg, "refused") {
					return reason, oneLine(msg), restarts, nil
				}
			}
			if _, ok := cs.State["running"]; ok {
				return "Running", "", cs.RestartCount, fmt.Errorf("pod %s runs: it should be refused", name)
			}
		}
		if time.Now().After(deadline) {
			return reason, oneLine(msg), restarts, fmt.Errorf("pod %s: no refusal after %v (%v)", name, timeout, gerr)
		}
		time.Sleep(3 * time.Second)
	}
}

// waitEvent waits until `kubectl describe pod` shows text.
func waitEvent(t *testing.T, cl *Cluster, name, text string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		desc, err := cl.Kubectl(t, "describe", "pod", "-n", "e2e", name)
		if err == nil && strings.Contains(desc, text) {
			return desc, nil
		}
		if time.Now().After(deadline) {
			return desc, fmt.Errorf("kubectl describe pod %s shows no %q after %v", name, text, timeout)
		}
		time.Sleep(3 * time.Second)
	}
}

func podSummary(t *testing.T, cl *Cluster, name string) string {
	out, _ := cl.Kubectl(t, "get", "pod", "-n", "e2e", name, "--no-headers")
	return oneLine(out)
}

func expect(out string, wants ...string) error {
	var missing []string
	for _, w := range wants {
		if !strings.Contains(out, w) {
			missing = append(missing, fmt.Sprintf("%q", w))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

func grepLine(text, substr string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func printTable(t *testing.T, rows []row) {
	var b strings.Builder
	fmt.Fprintf(&b, "kubelet, kube-apiserver, kubectl v1.37.2 + containerd v2.4.2 + runc v1.5.2, RuntimeClass hardened (deploy/policy.yaml), %s\n\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| check | result | what it showed |\n| --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Check, r.Result, strings.ReplaceAll(r.Detail, "|", "\\|"))
	}
	fmt.Println(b.String())
	dir := filepath.Join(harness.RepoRoot(), "e2e", "kubernetes", "results")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		os.WriteFile(filepath.Join(dir, "e2e-kubernetes.md"), []byte(b.String()), 0o644)
	}
}

// runInstaller applies deploy/kubernetes through InstallerOverlay, waits
// for the installer's pod and checks what it did: the node labelled, the
// shim, its verifier, the policy and the drop-in in the node root, and
// containerd's config importing the drop-in.
func runInstaller(t *testing.T, cl *Cluster, nodeRoot string, cd *harness.Containerd) (string, error) {
	overlay := InstallerOverlay(t, nodeRoot, cd)
	if out, err := cl.Kubectl(t, "apply", "-k", overlay); err != nil {
		return oneLine(out), err
	}
	var pod string
	deadline := time.Now().Add(4 * time.Minute)
	for pod == "" {
		out, _ := cl.Kubectl(t, "get", "pods", "-n", "hardened-system", "-l", "app.kubernetes.io/name=hardened-installer", "-o", "jsonpath={.items[0].metadata.name}")
		pod = strings.TrimSpace(out)
		if pod == "" {
			if time.Now().After(deadline) {
				return "", fmt.Errorf("no installer pod after 4 minutes")
			}
			time.Sleep(2 * time.Second)
		}
	}
	if err := waitReady(t, cl, "hardened-system", pod, 4*time.Minute); err != nil {
		// What each init container said, as an admin would look.
		var said []string
		for _, c := range []string{"install", "label", "observe"} {
			out, _ := cl.Kubectl(t, "logs", "-n", "hardened-system", pod, "-c", c, "--previous")
			if strings.TrimSpace(out) == "" {
				out, _ = cl.Kubectl(t, "logs", "-n", "hardened-system", pod, "-c", c)
			}
			said = append(said, c+": "+oneLine(out))
		}
		return strings.Join(said, "; "), err
	}
	logs, _ := cl.Kubectl(t, "logs", "-n", "hardened-system", pod, "-c", "install")
	var problems []string
	if out, _ := cl.Kubectl(t, "get", "node", NodeName, "-o", "jsonpath={.metadata.labels.hardened\\.dev/runtime}"); out != "installed" {
		problems = append(problems, fmt.Sprintf("node label hardened.dev/runtime=%q", out))
	}
	for _, f := range []string{"usr/local/bin/containerd-shim-hardened-v2", "usr/local/bin/hardened-verify", "etc/hardened/policy.yaml", "etc/containerd/conf.d/hardened.toml", "etc/hardened/install.json"} {
		if _, err := os.Stat(filepath.Join(nodeRoot, f)); err != nil {
			problems = append(problems, "no /"+f)
		}
	}
	dropIn, _ := os.ReadFile(filepath.Join(nodeRoot, "etc/containerd/conf.d/hardened.toml"))
	if strings.Contains(string(dropIn), "ConfigPath =") {
		problems = append(problems, "the drop-in sets ConfigPath")
	}
	config, _ := os.ReadFile(filepath.Join(nodeRoot, "etc/containerd/config.toml"))
	if !strings.Contains(string(config), "conf.d") {
		problems = append(problems, "config.toml does not import conf.d")
	}
	detail := fmt.Sprintf("pod %s Running; install log: %s", pod, oneLine(logs))
	if len(problems) > 0 {
		return detail, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return detail, nil
}
