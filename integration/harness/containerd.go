package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options configure a private containerd.
type Options struct {
	// PolicyPath is the node policy the hardened runtime gets: as the CRI
	// runtime's ConfigPath option and as $HARDENED_POLICY for the shims.
	PolicyPath string
	// ShimDir holds containerd-shim-hardened-v2 (see BuildShim).
	ShimDir string
}

// Containerd is a running private containerd.
type Containerd struct {
	Dir, Root, State, Address, LogPath string
	Cmd                                *exec.Cmd
	Client                             *containerd.Client
	conn                               *grpc.ClientConn
}

const configTemplate = `version = 3
root = "{{.Root}}"
state = "{{.State}}"

[grpc]
  address = "{{.Address}}"

[ttrpc]
  address = "{{.Address}}.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "hardened.test/pause:latest"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # Build machines may lack CAP_SYS_RESOURCE, without which the pause
  # container's oom_score_adj of -998 cannot be set (for runc and hardened
  # alike): keep OOM scores at containerd's own or above.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{{.Runc}}"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened]
      runtime_type = "io.containerd.hardened.v2"
{{- if .Policy}}
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened.options]
        ConfigPath = "{{.Policy}}"
{{- end}}
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{{.Dir}}/cni/bin"]
    conf_dir = "{{.Dir}}/cni/conf"
`

// Start starts a private containerd and waits until it serves.
func Start(opts Options) (*Containerd, error) {
	// Shim sockets live at <state>/s/<64 hex> (and ours one level deeper),
	// and unix socket paths have 107 bytes: keep the directory short.
	dir, err := os.MkdirTemp("/tmp", "hd-")
	if err != nil {
		return nil, err
	}
	c := &Containerd{Dir: dir, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Address: filepath.Join(dir, "c.sock"), LogPath: filepath.Join(dir, "containerd.log")}
	for _, d := range []string{c.Root, c.State, filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// The state directory is a tmpfs, as /run/containerd is on real nodes
	// (bundles, config.json writes and fsyncs cost what they cost there).
	if err := syscall.Mount("tmpfs", c.State, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0700"); err != nil {
		return nil, fmt.Errorf("mount a tmpfs on %s: %w", c.State, err)
	}
	cfg := filepath.Join(dir, "config.toml")
	f, err := os.Create(cfg)
	if err != nil {
		return nil, err
	}
	err = template.Must(template.New("cfg").Parse(configTemplate)).Execute(f, map[string]string{
		"Root": c.Root, "State": c.State, "Address": c.Address, "Dir": dir,
		"Runc": filepath.Join(ToolsBin(), "runc"), "Policy": opts.PolicyPath,
	})
	f.Close()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(c.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	path := ToolsBin() + ":" + os.Getenv("PATH")
	if opts.ShimDir != "" {
		path = opts.ShimDir + ":" + path
	}
	c.Cmd = exec.Command(filepath.Join(ToolsBin(), "containerd"), "--config", cfg)
	c.Cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "PATH=") || strings.HasPrefix(e, "HARDENED_POLICY=")
	}), "PATH="+path)
	if opts.PolicyPath != "" {
		c.Cmd.Env = append(c.Cmd.Env, "HARDENED_POLICY="+opts.PolicyPath)
	}
	// The shims' image-facts cache stays inside this containerd's directory.
	c.Cmd.Env = append(c.Cmd.Env, "HARDENED_CACHE_DIR="+filepath.Join(c.State, "hardened-images"))
	c.Cmd.Stdout, c.Cmd.Stderr = logf, logf
	c.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.Cmd.Start(); err != nil {
		return nil, err
	}
	go c.Cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if client, err := containerd.New(c.Address, containerd.WithTimeout(2*time.Second)); err == nil {
			if _, err := client.Version(context.Background()); err == nil {
				c.Client = client
				break
			}
			client.Close()
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("containerd did not come up in 30s; log:\n%s", c.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c, nil
}

// CRI returns CRI clients over containerd's socket.
func (c *Containerd) CRI() (runtime.RuntimeServiceClient, runtime.ImageServiceClient, error) {
	if c.conn == nil {
		conn, err := grpc.NewClient("unix://"+c.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		c.conn = conn
	}
	return runtime.NewRuntimeServiceClient(c.conn), runtime.NewImageServiceClient(c.conn), nil
}

// Ctr runs the pinned ctr against this containerd.
func (c *Containerd) Ctr(ns string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(ToolsBin(), "ctr"), append([]string{"--address", c.Address, "--namespace", ns}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// LogTail returns the last n lines of containerd's log (shim logs included).
func (c *Containerd) LogTail(n int) string {
	data, _ := os.ReadFile(c.LogPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns containerd's whole log.
func (c *Containerd) Log() string {
	data, _ := os.ReadFile(c.LogPath)
	return string(data)
}

// Stop removes every task, container and pod, stops containerd by PID,
// kills shims left behind, unmounts what is mounted below the directory and
// removes it.
func (c *Containerd) Stop() {
	if c.Client != nil {
		c.removeAll()
		c.Client.Close()
	}
	if c.conn != nil {
		c.conn.Close()
	}
	if c.Cmd != nil && c.Cmd.Process != nil {
		c.Cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			for processAlive(c.Cmd.Process.Pid) {
				time.Sleep(50 * time.Millisecond)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Cmd.Process.Kill()
		}
	}
	for _, pid := range c.ShimPIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	unmountBelow(c.Dir)
	os.RemoveAll(c.Dir)
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited.
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// ShimPIDs lists the shim processes serving this containerd.
func (c *Containerd) ShimPIDs() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.Contains(args[0], "containerd-shim") && slices.Contains(args, c.Address) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (c *Containerd) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if rs, _, err := c.CRI(); err == nil {
		if pods, err := rs.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.Items {
				rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.Id})
				rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.Id})
			}
		}
	}
	nss, _ := c.Client.NamespaceService().List(ctx)
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, _ := c.Client.Containers(nctx)
		for _, ctr := range cs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				task.Kill(nctx, syscall.SIGKILL)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
					}
				}
				task.Delete(nctx, containerd.WithProcessKill)
			}
			ctr.Delete(nctx, containerd.WithSnapshotCleanup)
		}
	}
}

// MountsBelow lists the mount points below dir.
func MountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

func unmountBelow(dir string) {
	mounts := MountsBelow(dir)
	// Deepest first.
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
}
