// Package kubernetes runs a real single-node Kubernetes cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet,
// v1.37.2, built by scripts/k8s-tools.sh) on the tests' private containerd,
// inside the network and mount namespace of scripts/netns-run.sh, and
// checks the hardened RuntimeClass with it (`make e2e-kubernetes`).
package kubernetes

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// The cluster's addresses, all inside the run's own network namespace.
const (
	// NodeName is the one node's name.
	NodeName = "e2e-node"
	// NodeIP is the node's address, on lo: the API server
	// advertises it and the kubelet serves on it.
	NodeIP = "10.200.0.1"
	// ServiceCIDR holds the kubernetes service's 10.0.0.1.
	ServiceCIDR = "10.0.0.0/24"
	apiPort     = "6443"
)

// ToolsDir is where scripts/k8s-tools.sh puts the binaries.
func ToolsDir() string { return filepath.Join(harness.RepoRoot(), ".tools", "k8s", "bin") }

// Cluster is a running single-node cluster.
type Cluster struct {
	// Dir holds the PKI, kubeconfigs, configs and every process's log.
	Dir string
	// Kubeconfig is the admin's (system:masters).
	Kubeconfig string
	procs      []*process
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartCluster starts etcd, the control plane and a kubelet on containerd
// at address (a harness containerd: its CRI plugin, CNI network and
// registry mirrors), waits until the node is Ready and stops everything
// when the test ends (Stop). kubeletRoot is the kubelet's --root-dir.
func StartCluster(t *testing.T, address, kubeletRoot string) *Cluster {
	t.Helper()
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"} {
		if _, err := os.Stat(filepath.Join(ToolsDir(), b)); err != nil {
			t.Fatalf("%s: %v (run scripts/k8s-tools.sh; make e2e-kubernetes does)", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "hardened-k8s-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	t.Cleanup(func() { c.Stop(t) })
	if err := nodeAddress(); err != nil {
		t.Fatal(err)
	}
	if err := writePKI(dir); err != nil {
		t.Fatal(err)
	}
	wrapper, err := kubeletWrapper(dir, kubeletRoot)
	if err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	server := "https://" + NodeIP + ":" + apiPort
	for name, cn := range map[string]string{"admin": "admin", "kubelet": "system:node:" + NodeName} {
		if err := writeKubeconfig(p(name+".kubeconfig"), server, p("ca.crt"), p(name+".crt"), p(name+".key")); err != nil {
			t.Fatalf("kubeconfig %s (%s): %v", name, cn, err)
		}
	}

	c.start(t, "etcd", "--name", "e2e", "--data-dir", p("etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e2e=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381")
	c.start(t, "kube-apiserver",
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", apiPort, "--advertise-address", NodeIP,
		"--cert-dir", p("apiserver-certs"),
		"--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
		"--client-ca-file", p("ca.crt"),
		"--service-cluster-ip-range", ServiceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key"),
		"--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--kubelet-client-certificate", p("admin.crt"), "--kubelet-client-key", p("admin.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--profiling=false")
	if err := c.waitHealthy(server+"/readyz", 3*time.Minute); err != nil {
		t.Fatalf("kube-apiserver: %v\n%s", err, c.logTail("kube-apiserver", 30))
	}
	c.start(t, "kube-controller-manager",
		"--kubeconfig", p("admin.kubeconfig"), "--authentication-kubeconfig", p("admin.kubeconfig"), "--authorization-kubeconfig", p("admin.kubeconfig"),
		"--bind-address", "127.0.0.1", "--cert-dir", p("kcm-certs"),
		"--service-account-private-key-file", p("sa.key"), "--root-ca-file", p("ca.crt"),
		"--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
		"--leader-elect=false", "--use-service-account-credentials=false", "--profiling=false")
	c.start(t, "kube-scheduler",
		"--kubeconfig", p("admin.kubeconfig"), "--authentication-kubeconfig", p("admin.kubeconfig"), "--authorization-kubeconfig", p("admin.kubeconfig"),
		"--bind-address", "127.0.0.1", "--leader-elect=false", "--profiling=false")

	kubeletConfig := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
# Pods' cgroups where containerd puts containers without a parent: no
# kubepods hierarchy on the build machine's cgroups.
cgroupsPerQOS: false
enforceNodeAllocatable: []
# The build machines have cgroup v1 (hybrid).
failCgroupV1: false
failSwapOn: false
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
# The kubelet's own oom_score_adj: root lacks CAP_SYS_RESOURCE here.
oomScoreAdj: 0
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podLogsDir: /var/log/pods
volumePluginDir: %s
serializeImagePulls: false
runtimeRequestTimeout: 5m
syncFrequency: 10s
`, address, NodeIP, p("kubelet-serving.crt"), p("kubelet-serving.key"), p("ca.crt"), filepath.Join(kubeletRoot, "volume-plugins"))
	if err := os.WriteFile(p("kubelet.yaml"), []byte(kubeletConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c.startCommand(t, "kubelet", "unshare", append([]string{"--mount", "--propagation", "unchanged", "--", wrapper}, "--config", p("kubelet.yaml"), "--kubeconfig", p("kubelet.kubeconfig"),
		"--root-dir", kubeletRoot, "--hostname-override", NodeName, "--node-ip", NodeIP, "--v", "2")...)
	if _, err := c.Wait(t, 4*time.Minute, "wait", "--for=condition=Ready", "node/"+NodeName, "--timeout=10s"); err != nil {
		t.Fatalf("node %s not Ready: %v\nkubelet log (tail):\n%s", NodeName, err, c.logTail("kubelet", 40))
	}
	// Pods need the default service account the controller manager makes.
	if _, err := c.Wait(t, 2*time.Minute, "get", "serviceaccount", "default", "-n", "default"); err != nil {
		t.Fatalf("no default service account: %v", err)
	}
	return c
}

// nodeAddress puts NodeIP on the loopback interface of the run's network
// namespace (the kernel here has no dummy interfaces; pods reach it through
// their bridge's gateway all the same), and routes the kubernetes service's
// address to the API server as kube-proxy would (a route and DNAT rules;
// there is no kube-proxy).
func nodeAddress() error {
	for _, args := range [][]string{
		{"ip", "addr", "add", NodeIP + "/32", "dev", "lo"},
		// A host-network pod (the installer's) reaches the service's address
		// only with a route to it: the OUTPUT rule below rewrites it after
		// the routing decision. Without one, connect fails with "network is
		// unreachable" until a pod's bridge happens to cover the address.
		{"ip", "route", "add", "10.0.0.1/32", "dev", "lo"},
		{"iptables", "-t", "nat", "-A", "PREROUTING", "-d", "10.0.0.1/32", "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", NodeIP + ":" + apiPort},
		{"iptables", "-t", "nat", "-A", "OUTPUT", "-d", "10.0.0.1/32", "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", NodeIP + ":" + apiPort},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// kubeletWrapper writes a script that starts the kubelet in a mount
// namespace of its own in which the kernel settings it insists on
// (vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1, ...)
// read as it wants them: a file with the value is bind-mounted over each
// /proc/sys entry that differs. The kubelet would otherwise write them for
// the whole host. Its own mount namespace, because a /proc with anything
// mounted over it cannot be mounted again in a user namespace (runc could
// not start a hostUsers: false pod). kubeletRoot is shared with the
// namespace containerd runs in, so the volumes the kubelet mounts reach
// the containers.
func kubeletWrapper(dir, kubeletRoot string) (string, error) {
	if err := syscall.Mount("", kubeletRoot, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
		return "", fmt.Errorf("make %s a shared mount (it must be a mount point of its own: scripts/netns-run.sh): %w", kubeletRoot, err)
	}
	want := map[string]string{
		"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10", "kernel/panic_on_oops": "1",
		"kernel/keys/root_maxkeys": "1000000", "kernel/keys/root_maxbytes": "25000000",
	}
	script := "#!/bin/sh\nset -e\n"
	for key, v := range want {
		target := filepath.Join("/proc/sys", key)
		cur, err := os.ReadFile(target)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(string(cur)) == v {
			continue
		}
		src := filepath.Join(dir, "sysctl-"+strings.ReplaceAll(key, "/", "."))
		if err := os.WriteFile(src, []byte(v+"\n"), 0o444); err != nil {
			return "", err
		}
		script += fmt.Sprintf("mount --bind %q %q\n", src, target)
	}
	script += fmt.Sprintf("exec %q \"$@\"\n", filepath.Join(ToolsDir(), "kubelet"))
	path := filepath.Join(dir, "kubelet.sh")
	return path, os.WriteFile(path, []byte(script), 0o755)
}

// start starts a component, its output in <Dir>/<name>.log.
func (c *Cluster) start(t *testing.T, name string, args ...string) {
	t.Helper()
	c.startCommand(t, name, filepath.Join(ToolsDir(), name), args...)
}

// startCommand starts a component with a command line of its own.
func (c *Cluster) startCommand(t *testing.T, name, path string, args ...string) {
	t.Helper()
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	t.Logf("e2e: %s pid %d (log %s)", name, cmd.Process.Pid, logPath)
}

// logTail returns the last n lines of a component's log.
func (c *Cluster) logTail(name string, n int) string {
	data, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns a component's whole log.
func (c *Cluster) Log(name string) string {
	data, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	return string(data)
}

// waitHealthy polls url with the admin's certificate.
func (c *Cluster) waitHealthy(url string, timeout time.Duration) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.Dir, "admin.crt"), filepath.Join(c.Dir, "admin.key"))
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(c.Dir, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(time.Second)
	}
	return fmt.Errorf("not healthy after %v: %v", timeout, last)
}

// Kubectl runs kubectl as the admin and returns its stdout; the error has
// its stderr.
func (c *Cluster) Kubectl(t testing.TB, args ...string) (string, error) {
	return c.KubectlIn(t, nil, args...)
}

// KubectlIn is Kubectl with stdin.
func (c *Cluster) KubectlIn(t testing.TB, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(ToolsDir(), "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Wait retries a kubectl command until it succeeds or timeout passes.
func (c *Cluster) Wait(t testing.TB, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.Kubectl(t, args...)
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(2 * time.Second)
	}
}

// Stop deletes every pod (so the kubelet stops their containers), then
// stops the kubelet, the control plane and etcd by PID, in that order
// (SIGTERM, SIGKILL after 15 seconds), and removes Dir. The containerd of
// the harness removes what is left when it stops.
func (c *Cluster) Stop(t testing.TB) {
	if len(c.procs) > 0 && c.running("kubelet") && c.running("kube-apiserver") {
		if _, err := c.Kubectl(t, "delete", "pods,daemonsets", "--all", "--all-namespaces", "--wait=true", "--timeout=90s", "--grace-period=5"); err != nil {
			t.Logf("e2e: delete pods: %v", err)
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
	if t.Failed() {
		t.Logf("e2e: cluster logs kept in %s", c.Dir)
		return
	}
	os.RemoveAll(c.Dir)
}

func (c *Cluster) running(name string) bool {
	for _, p := range c.procs {
		if p.name == name {
			select {
			case <-p.done:
				return false
			default:
				return true
			}
		}
	}
	return false
}

// writePKI writes a CA, the API server's serving certificate, client
// certificates for the admin (system:masters) and the kubelet
// (system:node:<NodeName>), the kubelet's serving certificate and the
// service account key pair.
func writePKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hardened-e2e-ca"},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), caKey); err != nil {
		return err
	}
	serial := int64(2)
	issue := func(name, cn string, orgs []string, usage x509.ExtKeyUsage, dns []string, ips []string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: orgs},
			NotBefore: now, NotAfter: now.Add(48 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns,
		}
		for _, ip := range ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writeKey(filepath.Join(dir, name+".key"), key)
	}
	if err := issue("apiserver", "kube-apiserver", nil, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]string{"127.0.0.1", NodeIP, "10.0.0.1"}); err != nil {
		return err
	}
	if err := issue("admin", "admin", []string{"system:masters"}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}
	if err := issue("kubelet", "system:node:"+NodeName, []string{"system:nodes"}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}
	if err := issue("kubelet-serving", NodeName, nil, x509.ExtKeyUsageServerAuth, []string{NodeName}, []string{NodeIP}); err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writeKubeconfig(path, server, ca, cert, key string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: user
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: user}
current-context: e2e
`, server, ca, cert, key)
	return os.WriteFile(path, []byte(cfg), 0o600)
}
