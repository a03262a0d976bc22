package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Where containerd v2.4.2's runc shim keeps what does not follow the state
// directory: shim sockets (pkg/shim.SocketAddress) and runc's state.
const (
	shimSocketDir = "/run/containerd/s"
	runcRootDir   = "/run/containerd/runc"
)

// Stop removes every pod, task and container, stops containerd by its PID
// (SIGTERM, SIGKILL after 10 seconds), kills the shims that served it and
// their processes, unmounts what is still mounted below Dir (deepest first,
// lazily if busy) and removes Dir. It runs once; later calls return the
// first result. Dir stays if something is still mounted below it.
func (c *Containerd) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Containerd) stop() error {
	var errs []error
	c.mu.Lock()
	client, criConn := c.client, c.criConn
	c.client, c.criConn = nil, nil
	c.mu.Unlock()
	select {
	case <-c.exited:
		if c.cmd != nil {
			errs = append(errs, fmt.Errorf("containerd pid %d exited before Stop (%v)", c.PID(), c.cmd.ProcessState))
		}
		if client != nil {
			client.Close()
			client = nil
		}
	default:
	}
	if client != nil {
		if criConn == nil {
			// Lazy: it connects only if removeAll uses it.
			criConn, _ = grpc.NewClient("unix://"+c.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
		if err := removeAll(client, criConn, c.Address); err != nil {
			errs = append(errs, err)
		}
		client.Close()
	}
	if criConn != nil {
		criConn.Close()
	}
	if err := c.terminate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.reapShims(); err != nil {
		errs = append(errs, err)
	}
	if err := unmountBelow(c.Dir); err != nil {
		errs = append(errs, err)
	} else {
		log, _ := os.ReadFile(c.LogPath)
		c.mu.Lock()
		c.finalLog = log
		c.mu.Unlock()
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeAll stops and removes every CRI pod, then kills and deletes every
// task and container in every namespace, so that the shims exit.
func removeAll(client *containerd.Client, criConn *grpc.ClientConn, address string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	// Pods through CRI, which also removes its own containers' state; only
	// when the CRI plugin serves (ExtraConfig may disable it).
	if criConn != nil {
		rs := runtime.NewRuntimeServiceClient(criConn)
		if pods, err := rs.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.Items {
				rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.Id})
				if _, err := rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					errs = append(errs, fmt.Errorf("remove pod %s: %w", p.Id, err))
				}
			}
		}
	}
	nss, err := client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces of %s: %w", address, err)
	}
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := client.Containers(nctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
					}
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("delete task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// terminate stops containerd by PID: SIGTERM, then SIGKILL.
func (c *Containerd) terminate() error {
	if c.PID() == 0 {
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(termTimeout):
	}
	c.cmd.Process.Kill()
	select {
	case <-c.exited:
		return fmt.Errorf("containerd pid %d ignored SIGTERM for %v and was killed", c.PID(), termTimeout)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("containerd pid %d survives SIGKILL", c.PID())
	}
}

// ShimPIDs lists the shim processes of this containerd: those whose
// command line names its socket or a path below Dir.
func (c *Containerd) ShimPIDs() []int {
	var pids []int
	for pid, args := range processes() {
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		if slices.ContainsFunc(args[1:], func(a string) bool {
			return a == c.Address || strings.HasPrefix(a, c.Dir+"/") || strings.HasPrefix(a, "unix://"+c.Dir+"/")
		}) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// reapShims kills the shims left running (after a failed removeAll or a
// crash) and every process below them, the containers included, then cleans
// up after them: their sockets in /run/containerd/s and runc's state.
func (c *Containerd) reapShims() error {
	shims := c.ShimPIDs()
	if len(shims) > 0 {
		victims := append(descendants(shims), shims...)
		for _, pid := range victims {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		deadline := time.Now().Add(5 * time.Second)
		for slices.ContainsFunc(victims, alive) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if left := slices.DeleteFunc(victims, func(pid int) bool { return !alive(pid) }); len(left) > 0 {
			return fmt.Errorf("processes %v of containerd %s survive SIGKILL", left, c.Address)
		}
	}
	// Bundles left behind: <state>/io.containerd.runtime.v2.task/<ns>/<id>.
	bundles, _ := filepath.Glob(filepath.Join(c.State, "io.containerd.runtime.v2.task", "*", "*"))
	for _, b := range bundles {
		ns, id := filepath.Base(filepath.Dir(b)), filepath.Base(b)
		if sock := shimSocket(b); filepath.Dir(sock) == shimSocketDir {
			if fi, err := os.Lstat(sock); err == nil && fi.Mode().Type() == fs.ModeSocket {
				os.Remove(sock)
			}
		}
		exec.Command(filepath.Join(ToolsBin(), "runc"), "--root", filepath.Join(runcRootDir, ns), "delete", "--force", id).Run()
	}
	return nil
}

// shimSocket returns the socket path of a bundle's shim, from the
// bootstrap.json containerd writes (shim protocol 3) or the older address
// file, or "".
func shimSocket(bundle string) string {
	var params struct {
		Address string `json:"address"`
	}
	if data, err := os.ReadFile(filepath.Join(bundle, "bootstrap.json")); err == nil && json.Unmarshal(data, &params) == nil {
		return strings.TrimPrefix(params.Address, "unix://")
	}
	if data, err := os.ReadFile(filepath.Join(bundle, "address")); err == nil {
		return strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
	}
	return ""
}

// processes maps every PID to its command line.
func processes() map[int][]string {
	procs := map[int][]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		procs[pid] = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	}
	return procs
}

// stat returns a process's state letter and parent PID.
func stat(pid int) (state string, ppid int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return fields[0], ppid, err == nil
}

// alive says whether pid runs (a zombie has exited).
func alive(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state != "Z"
}

// descendants returns every process below the given ones.
func descendants(roots []int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := stat(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, child := range children[pid] {
			out = append(out, child)
			queue = append(queue, child)
		}
	}
	return out
}

// MountsBelow lists the mount points strictly below dir, as this process
// sees them (/proc/self/mountinfo), in mount order.
func MountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		if mp := unescapeMountinfo(fields[4]); strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMountinfo decodes the octal escapes (\040 for a space …) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountBelow unmounts everything below dir, deepest (and latest) first,
// lazily when a mount is busy, and fails if anything is left.
func unmountBelow(dir string) error {
	for range 5 {
		mounts := MountsBelow(dir)
		if len(mounts) == 0 {
			return nil
		}
		// Deepest first; among equals the latest mount first (stacked mounts).
		slices.Reverse(mounts)
		slices.SortStableFunc(mounts, func(a, b string) int {
			return strings.Count(b, "/") - strings.Count(a, "/")
		})
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				syscall.Unmount(m, syscall.MNT_DETACH)
			}
		}
	}
	if left := MountsBelow(dir); len(left) > 0 {
		return fmt.Errorf("still mounted below %s (left in place): %v", dir, left)
	}
	return nil
}
