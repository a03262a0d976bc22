package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Environment the harness gives containerd, and so the shims it starts.
const (
	// PolicyEnv is the shim's policy path for containers that come without
	// runtime options (the Go client, ctr); the same as shim.PolicyEnv.
	PolicyEnv = "HARDENED_POLICY"
	// CacheDirEnv is where the shim caches image facts; the harness keeps it
	// in the private state directory. The same as shim.CacheDirEnv.
	CacheDirEnv = "HARDENED_CACHE_DIR"
	// UsernsDirEnv and UsernsRangeEnv are where the shim keeps its user
	// namespace ranges and the window of host ids it takes them from
	// (internal/userns): the harness keeps them private (Containerd.UsernsDir,
	// UsernsFirst).
	UsernsDirEnv   = "HARDENED_USERNS_DIR"
	UsernsRangeEnv = "HARDENED_USERNS_RANGE"
)

// UsernsSlots is how many user namespace ranges of 65536 ids a test
// containerd's shims may hand out: a window of its own (see UsernsFirst),
// so that test binaries running at once do not share ranges.
const UsernsSlots = 64

// DefaultNamespace is Containerd.Namespace unless a test changes it.
const DefaultNamespace = "hardened-test"

// How long the harness waits for containerd to serve, and to stop.
const (
	readyTimeout = 30 * time.Second
	termTimeout  = 10 * time.Second
)

// maxSocketPath is the longest unix socket path (sun_path, NUL included).
const maxSocketPath = 107

// Options configure a private containerd. The zero value is fine for tests
// that only use the runc runtime.
type Options struct {
	// PolicyPath is the node policy for the hardened runtime: the CRI
	// runtime's ConfigPath option (runtimeoptions.Options, as CRI sends it to
	// a non-runc runtime) and $HARDENED_POLICY for every shim. Empty: none.
	PolicyPath string
	// ShimDir is put first on containerd's $PATH; it holds
	// containerd-shim-hardened-v2 (see BuildShim). Empty: no hardened shim.
	ShimDir string
	// ExtraConfig is TOML appended to the generated config.toml. It may add
	// tables but not repeat one the harness writes (TOML forbids that).
	ExtraConfig string
	// BeforeStart, when set, is called with the path of the generated
	// config.toml before containerd starts on it: a test may change the
	// config (an installer does) or record it.
	BeforeStart func(configPath string) error
	// RegistryHosts are plain-HTTP registries (host:port, e.g. a test
	// Registry's Addr) to pull from: each gets a hosts.toml in CertsDir,
	// which the CRI plugin (registry config_path) and Pull read. More can be
	// added while containerd runs (AddRegistryHost).
	RegistryHosts []string
	// NoConfigPath leaves the hardened runtime without an options table,
	// as deploy/containerd-hardened.toml ships it: its shims find the
	// policy through $HARDENED_POLICY (PolicyPath), as on a node they find
	// /etc/hardened/policy.yaml. With ConfigPath, containerd's CRI plugin
	// cannot start a user-namespaced pod on a non-runc runtime (it turns the
	// handler's runtimeoptions.Options into runc's options type for it).
	NoConfigPath bool
	// SandboxImage is the CRI sandbox (pause) image; default Pause, which
	// ImportImages imports. Another one is pulled when a pod needs it.
	SandboxImage string
}

// Containerd is a private containerd started by Start or Launch.
type Containerd struct {
	// Dir is the private directory (/tmp/hd-*) that holds everything below.
	Dir string
	// Root and State are containerd's root and state directories; State is
	// a tmpfs, as /run/containerd is on a node.
	Root, State string
	// Address is containerd's gRPC socket (containerd, CRI); TTRPCAddress
	// its ttrpc socket.
	Address, TTRPCAddress string
	// Config is the generated config.toml.
	Config string
	// LogPath is containerd's stdout and stderr, shim logs included.
	LogPath string
	// FIFODir is where tests should put their cio FIFOs
	// (cio.WithFIFODir), so nothing is left in /run/containerd/fifo.
	FIFODir string
	// Namespace is the containerd namespace of Client, Context, Ctr and the
	// Import helpers; DefaultNamespace unless changed.
	Namespace string
	// UsernsDir is the shims' user namespace state directory, and
	// UsernsFirst the first host id of their window of UsernsSlots ranges.
	UsernsDir   string
	UsernsFirst uint32

	cmd    *exec.Cmd
	exited chan struct{} // closed when containerd has exited
	env    []string      // containerd's environment

	mu      sync.Mutex
	client  *containerd.Client
	criConn *grpc.ClientConn
	criErr  error // CRI readiness, once criConn is set

	stopOnce sync.Once
	stopErr  error
	finalLog []byte // the log, kept when Dir is removed
}

// configTemplate is a version 3 config (containerd v2.4.2 migrates it to
// its version 4 in memory and logs one warning).
const configTemplate = `version = 3
root = {{q .Root}}
state = {{q .State}}
imports = []

[grpc]
  address = {{q .Address}}

[ttrpc]
  address = {{q .TTRPCAddress}}

# No debug socket, no metrics listener.
[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  # NRI's socket is global (/var/run/nri/nri.sock): parallel containerds
  # would take it from each other.
  [plugins."io.containerd.nri.v1.nri"]
    disable = true

  # The opt plugin creates <path>/bin and <path>/lib (default /opt/containerd).
  [plugins."io.containerd.internal.v1.opt"]
    path = {{q .Opt}}

  # Shim sockets (default /run/containerd/s) below Dir too, so that what
  # a killed shim leaves goes with Dir.
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = {{q .Sockets}}

  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = {{q .Sandbox}}
    # Registry hosts: <CertsDir>/<host:port>/hosts.toml, read at each pull.
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = {{q .CertsDir}}

  [plugins."io.containerd.cri.v1.runtime"]
    enable_selinux = false
    # Keep containers' oom_score_adj at containerd's own or above: the
    # pause container's -998 cannot always be set on build machines.
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = {{q .Runc}}
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened]
        runtime_type = "io.containerd.hardened.v2"
{{- if .ConfigPath}}
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened.options]
          ConfigPath = {{q .ConfigPath}}
{{- end}}
    # Private CNI directories: with the plugins make tools builds, a pod
    # network with nothing on the host (99-hardened-test-pods.conflist: lo
    # and a tap eth0 in each pod's own network namespace). Without them
    # the CRI plugin reports NetworkReady=false and only host-network pods
    # run.
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [{{q .CNIBin}}]
      conf_dir = {{q .CNIConf}}
`

// Start starts a private containerd for the test and stops it (see Stop)
// when the test and its subtests are done; it dumps the tail of
// containerd's log when the test failed. It fails the test if containerd
// does not serve within 30 seconds.
func Start(t testing.TB, opts Options) *Containerd {
	t.Helper()
	begin := time.Now()
	c, err := Launch(opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: containerd pid %d serving %s (%v)", c.PID(), c.Address, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		err := c.Stop()
		if err != nil {
			t.Errorf("harness: stop containerd: %v", err)
		}
		if t.Failed() {
			t.Logf("harness: containerd log (tail):\n%s", c.LogTail(60))
		}
	})
	return c
}

// launches counts the containerds this test binary launched.
var launches atomic.Int64

// Launch is Start for TestMain, which has no *testing.T: the caller must
// call Stop. On error nothing is left running.
func Launch(opts Options) (*Containerd, error) {
	dir, err := os.MkdirTemp("/tmp", "hd-")
	if err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	c := &Containerd{
		Dir:          dir,
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		Address:      filepath.Join(dir, "c.sock"),
		TTRPCAddress: filepath.Join(dir, "c.sock.ttrpc"),
		Config:       filepath.Join(dir, "config.toml"),
		LogPath:      filepath.Join(dir, "containerd.log"),
		FIFODir:      filepath.Join(dir, "fifo"),
		Namespace:    DefaultNamespace,
		UsernsDir:    filepath.Join(dir, "userns"),
		// 0x70000000 plus a window of UsernsSlots ranges picked by pid
		// and launch: test binaries, and containerds of one, apart.
		UsernsFirst: 0x70000000 + uint32((os.Getpid()+7*int(launches.Add(1)))%60)*UsernsSlots*65536,
		exited:      make(chan struct{}),
	}
	if err := c.launch(opts); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start containerd in %s: %w", dir, err)
	}
	return c, nil
}

func (c *Containerd) launch(opts Options) error {
	if len(c.TTRPCAddress) >= maxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes", c.TTRPCAddress, maxSocketPath-1)
	}
	dirs := map[string]string{"Opt": "opt", "CNIBin": "cni/bin", "CNIConf": "cni/conf", "Sockets": "s"}
	vars := map[string]string{
		"Root": c.Root, "State": c.State, "Address": c.Address, "TTRPCAddress": c.TTRPCAddress,
		"Runc": filepath.Join(ToolsBin(), "runc"), "Sandbox": Pause,
		"CertsDir": c.CertsDir(), "ConfigPath": opts.PolicyPath,
	}
	if opts.NoConfigPath {
		vars["ConfigPath"] = ""
	}
	if opts.SandboxImage != "" {
		vars["Sandbox"] = opts.SandboxImage
	}
	for key, rel := range dirs {
		vars[key] = filepath.Join(c.Dir, rel)
	}
	for _, d := range []string{c.Root, c.State, c.FIFODir, vars["Opt"], vars["CNIBin"], vars["CNIConf"], vars["Sockets"], c.CertsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, host := range opts.RegistryHosts {
		if err := c.AddRegistryHost(host); err != nil {
			return err
		}
	}
	if err := podNetwork(vars["CNIConf"], vars["CNIBin"]); err != nil {
		return err
	}
	// Bundles, config.json writes and fsyncs cost here what they cost on a
	// node, where /run/containerd is a tmpfs. Mode 0711 as there: a
	// container's root in a user namespace of its own (a host id of its
	// range) must reach its bundle's rootfs.
	if err := syscall.Mount("tmpfs", c.State, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0711"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", c.State, err)
	}
	if err := os.Chmod(c.Dir, 0o711); err != nil {
		return err
	}
	var cfg bytes.Buffer
	tmpl := template.Must(template.New("config").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(configTemplate))
	if err := tmpl.Execute(&cfg, vars); err != nil {
		return err
	}
	if opts.ExtraConfig != "" {
		cfg.WriteString("\n# Options.ExtraConfig\n" + opts.ExtraConfig + "\n")
	}
	if err := os.WriteFile(c.Config, cfg.Bytes(), 0o600); err != nil {
		return err
	}
	if opts.BeforeStart != nil {
		if err := opts.BeforeStart(c.Config); err != nil {
			return fmt.Errorf("BeforeStart: %w", err)
		}
	}
	c.env = append(containerdEnv(opts, c.State), UsernsDirEnv+"="+c.UsernsDir,
		fmt.Sprintf("%s=%d:%d", UsernsRangeEnv, c.UsernsFirst, UsernsSlots*65536))
	return c.startProcess()
}

// PodNetworkPlugins are the CNI plugins of the tests' pod network, which
// `make tools` builds into <repo>/.tools/cni/bin.
var PodNetworkPlugins = []string{"loopback", "tap", "static"}

// CNIBin is where `make tools` puts the CNI plugins.
func CNIBin() string { return filepath.Join(RepoRoot(), ".tools", "cni", "bin") }

// HasPodNetwork reports whether the plugins of the tests' pod network are
// there: then pods without the host network run (see podNetwork).
func HasPodNetwork() bool {
	for _, p := range PodNetworkPlugins {
		if _, err := os.Stat(filepath.Join(CNIBin(), p)); err != nil {
			return false
		}
	}
	return true
}

// podNetwork gives the CRI plugin the tests' pod network when its plugins
// are there: each pod a network namespace of its own with lo and a
// tap eth0, a tap device no one reads (10.255.255.2, the same in every pod:
// nothing connects them), and nothing on the host's side. A suite's own network (a BeforeStart hook's
// conflist, named before it) takes precedence.
func podNetwork(confDir, binDir string) error {
	if !HasPodNetwork() {
		return nil
	}
	for _, p := range PodNetworkPlugins {
		if err := os.Symlink(filepath.Join(CNIBin(), p), filepath.Join(binDir, p)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	conf := `{"cniVersion": "1.0.0", "name": "hardened-test-pods", "plugins": [
  {"type": "tap", "ipam": {"type": "static", "addresses": [{"address": "10.255.255.2/24"}]}}
]}
`
	return os.WriteFile(filepath.Join(confDir, "99-hardened-test-pods.conflist"), []byte(conf), 0o600)
}

// startProcess starts containerd on c.Config and waits until it serves.
func (c *Containerd) startProcess() error {
	logFile, err := os.OpenFile(c.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(filepath.Join(ToolsBin(), "containerd"), "--config", c.Config)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a ^C to the tests does not reach it first,
	// and killed if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return c.waitReady()
}

// KillAndRestart kills containerd with SIGKILL, as a crash or the OOM
// killer would, and starts it again on the same root, state, sockets and
// config, as systemd would. Shims and containers keep running meanwhile;
// clients from Client and CRI reconnect by themselves.
func (c *Containerd) KillAndRestart() error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return fmt.Errorf("containerd %s is not running", c.Address)
	}
	cmd.Process.Kill()
	<-exited
	c.mu.Lock()
	old := c.client
	c.client = nil
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return c.startProcess()
}

// containerdEnv is the test's environment with PATH = ShimDir, ToolsBin,
// $PATH, and the hardened shim's variables.
func containerdEnv(opts Options, state string) []string {
	env := slices.DeleteFunc(os.Environ(), func(e string) bool {
		name, _, _ := strings.Cut(e, "=")
		return name == "PATH" || name == PolicyEnv || name == CacheDirEnv || name == UsernsDirEnv || name == UsernsRangeEnv || strings.HasPrefix(name, "CONTAINERD_")
	})
	path := []string{ToolsBin(), os.Getenv("PATH")}
	if opts.ShimDir != "" {
		path = append([]string{opts.ShimDir}, path...)
	}
	if os.Getenv("PATH") == "" {
		path[len(path)-1] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env = append(env, "PATH="+strings.Join(path, ":"), CacheDirEnv+"="+filepath.Join(state, "hardened-images"))
	if opts.PolicyPath != "" {
		env = append(env, PolicyEnv+"="+opts.PolicyPath)
	}
	return env
}

// waitReady polls containerd's Version until it answers, containerd exits
// or readyTimeout passes.
func (c *Containerd) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := os.Stat(c.Address); err == nil {
			client, err := containerd.New(c.Address, containerd.WithDefaultNamespace(c.Namespace))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = client.Version(ctx)
				cancel()
				if err == nil {
					c.client = client
					return nil
				}
				client.Close()
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited (%v); log:\n%s", c.cmd.ProcessState, c.LogTail(40))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not serve in %v; log:\n%s", readyTimeout, c.LogTail(40))
		}
	}
}

// PID returns containerd's process id, or 0 if it was not started.
func (c *Containerd) PID() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Client returns the containerd client (github.com/containerd/containerd/v2/client)
// connected to this containerd, with Namespace as its default namespace. The
// harness closes it in Stop.
func (c *Containerd) Client(t testing.TB) *containerd.Client {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		t.Fatalf("harness: containerd %s is stopped", c.Address)
	}
	return c.client
}

// Context returns the test's context (canceled when the test ends) in
// Namespace. Use namespaces.WithNamespace for another namespace.
func (c *Containerd) Context(t testing.TB) context.Context {
	t.Helper()
	return namespaces.WithNamespace(t.Context(), c.Namespace)
}

// CRI returns clients of the CRI (k8s.io/cri-api runtime v1) runtime and
// image services on containerd's socket, the way the kubelet talks to it.
// The first call waits until the CRI plugin is initialized and fails the
// test if it does not answer Version within 30 seconds. CRI works in the
// containerd namespace "k8s.io": see Import.
func (c *Containerd) CRI(t testing.TB) (runtime.RuntimeServiceClient, runtime.ImageServiceClient) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.criConn == nil {
		conn, err := grpc.NewClient("unix://"+c.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("harness: CRI client: %v", err)
		}
		c.criConn = conn
		c.criErr = waitCRI(runtime.NewRuntimeServiceClient(conn))
	}
	if c.criErr != nil {
		t.Fatalf("harness: %v", c.criErr)
	}
	return runtime.NewRuntimeServiceClient(c.criConn), runtime.NewImageServiceClient(c.criConn)
}

// waitCRI polls CRI Version until the plugin is initialized.
func waitCRI(rs runtime.RuntimeServiceClient) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := rs.Version(ctx, &runtime.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRI did not answer Version in %v: %w", readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ctr runs the pinned ctr against this containerd in Namespace
// (through $CONTAINERD_NAMESPACE; args may start with "-n", ns to use
// another) and returns its stdout. The error carries ctr's stderr.
func (c *Containerd) Ctr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(ToolsBin(), "ctr"), append([]string{"--address", c.Address}, args...)...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "CONTAINERD_") }),
		"CONTAINERD_NAMESPACE="+c.Namespace)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Log returns containerd's whole log, shim logs included (also after Stop).
func (c *Containerd) Log() string {
	data, err := os.ReadFile(c.LogPath)
	if errors.Is(err, os.ErrNotExist) {
		c.mu.Lock()
		data = c.finalLog
		c.mu.Unlock()
	}
	return string(data)
}

// LogTail returns the last n lines of Log.
func (c *Containerd) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(c.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
