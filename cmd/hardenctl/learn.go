package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/internal/imagefs"
)

func learnCommand() *cli.Command {
	return &cli.Command{
		Name:      "learn",
		Usage:     "run a workload once and write a seccomp profile of the syscalls it made, and list the paths it wrote; or turn what an observer saw into a policy change",
		ArgsUsage: "IMAGE-LAYOUT|IMAGE.tar|ROOTFS [-- CMD ARGS...]  |  --events FILE|--metrics URL",
		Description: `Runs the workload like ` + "`hardenctl run`" + ` (hardened by the level, so it runs as
it will in production), with a seccomp filter that hands every syscall to
hardenctl (seccomp user notification: the spec's linux.seccomp.listenerPath,
which runc implements, and SCMP_ACT_NOTIFY). hardenctl records each syscall and
lets it continue. The profile it writes allows what was recorded, and:
  - write, which runc never lets a filter hand to an agent (it sends the
    notification fd with it), and exit, exit_group and rt_sigreturn, which a
    short run may not show;
  - what runc's own init (a Go program) may call between loading the filter
    and starting the workload, which depends on thread scheduling and so is
    not seen every run: futex, sched_yield, nanosleep, tgkill, getpid,
    gettid, signal and memory management, close, fcntl, openat, read,
    epoll, fstat, newfstatat, execve;
  - clone3 fails with ENOSYS, so that libc falls back to clone;
  - everything else fails with EPERM (defaultAction SCMP_ACT_ERRNO).
Use it with ` + "`hardenctl run --seccomp`" + `, as a level's profile, or as a Kubernetes
Localhost profile. Exercise every code path of the workload while learning:
what it did not do is refused later.

learn also lists the paths the workload wrote outside the writable paths of
its level (which the read-only root would refuse), as a ready
rootfs.writablePaths list: it runs on an overlay of the image, writable, with
CAP_DAC_OVERRIDE so that a write the user could not make is seen rather than
refused, and reports the directories it wrote in (made, changed or removed a
file) and the directories it made.

With --events or --metrics, learn runs nothing: it reads what the level
denied in production, or would have denied in trial mode (seccomp.mode:
audit), from the events of ` + "`hardenctl events --output json`" + ` or the counters of
` + "`hardenctl observe`" + `, and proposes a change to the node policy: a level that
extends the observed one, enforcing, with the seccomp packs that allow what
was seen, and a rule that gives it to the workload (by image where the events
name one). Syscalls no pack allows are listed; --out writes the level's
profile plus them, to try with ` + "`hardenctl run --seccomp`" + `. Expected probes (clone3)
are left out.

EXAMPLES:
   hardenctl learn --out sh.json ./busybox-layout -- sh -c 'ls /; cat /etc/passwd'
   hardenctl learn --explain --out app.json ./app.tar
   hardenctl run --seccomp sh.json ./busybox-layout -- sh -c 'ls /; cat /etc/passwd'
   hardenctl events --output json > seen.jsonl      # a day under a level with seccomp.mode: audit
   hardenctl learn --events seen.jsonl --pod shop/web-1
   hardenctl learn --metrics http://node1:9627/metrics --pod shop/web-1 --level trial`,
		Flags: append(append(levelFlags, learnSeenFlags...),
			&cli.StringFlag{Name: "out", Usage: "write the profile here (default: stdout)"},
			&cli.BoolFlag{Name: "explain", Usage: "print the recorded syscalls with their counts (stderr)"},
			&cli.StringFlag{Name: "runc", Value: "runc", Usage: "the runc binary"},
		),
		Before: checkOutput,
		Action: learnAction,
	}
}

// alwaysAllowed are syscalls the learned profile allows without seeing
// them; see learnCommand's description.
var alwaysAllowed = []string{"write", "exit", "exit_group", "rt_sigreturn",
	// runc's init between the filter and execve (Go runtime): seen or not
	// depending on scheduling, and without them it dies (a futex wake-up
	// that fails is a SIGSEGV in the Go runtime).
	"futex", "sched_yield", "nanosleep", "clock_nanosleep", "tgkill", "getpid", "gettid",
	"rt_sigprocmask", "rt_sigaction", "sigaltstack", "mmap", "munmap", "madvise", "mprotect",
	"close", "fcntl", "openat", "read", "epoll_pwait", "epoll_ctl", "fstat", "newfstatat", "execve"}

func learnAction(c *cli.Context) error {
	if c.String("events") != "" || c.String("metrics") != "" {
		if c.NArg() > 0 {
			return usageError{"learn --events/--metrics runs nothing: give no image"}
		}
		return learnFromSeen(c)
	}
	if c.NArg() < 1 {
		return usageError{"learn: give an image layout, an image .tar or a root filesystem"}
	}
	if api, err := libseccomp.GetAPI(); err != nil || api < 6 {
		return fmt.Errorf("learn needs seccomp user notification with continue (libseccomp >= 2.5 and Linux >= 5.7; API level %d)", api)
	}
	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go forwardSignals(sigs, stop)
	signal.Ignore(syscall.SIGPIPE) // see runAction
	w, plain, err := workloadSpec(ctx, c)
	if err != nil {
		return err
	}
	defer os.RemoveAll(w.dir)
	id := containerID()
	s, _, err := w.harden(c, plain)
	if err != nil {
		return err
	}
	rec, err := newRecorder(filepath.Join(w.dir, "seccomp.sock"))
	if err != nil {
		return err
	}
	defer rec.close()
	s.Linux.Seccomp, err = notifyAll(rec.path)
	if err != nil {
		return err
	}
	// What it writes outside the level's writable paths lands in an
	// overlay's upper directory instead of failing on the read-only root.
	writes, err := watchWrites(w.dir, w.rootfs, s)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "note: the paths the workload writes are not learned: %v\n", err)
	}
	code, err := w.runc(ctx, c.String("runc"), id, s, os.Stdin, c.App.ErrWriter, c.App.ErrWriter)
	if err != nil {
		writes.close()
		return err
	}
	if writes != nil {
		paths, err := writes.paths()
		writes.close()
		if err != nil {
			return fmt.Errorf("learn the paths the workload wrote: %w", err)
		}
		reportWrites(c.App.ErrWriter, paths)
	}
	counts := rec.wait()
	profile := learnedProfile(counts)
	if c.Bool("explain") {
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return counts[names[i]] > counts[names[j]] || (counts[names[i]] == counts[names[j]] && names[i] < names[j])
		})
		tw := tabwriter.NewWriter(c.App.ErrWriter, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SYSCALL\tCALLS")
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t%d\n", n, counts[n])
		}
		tw.Flush()
	}
	allowed := len(profile.Syscalls[0].Names)
	fmt.Fprintf(c.App.ErrWriter, "learned %d syscalls (%d allowed with the ones always allowed); the workload exited %d\n", len(counts), allowed, code)
	data, err := json.MarshalIndent(profile, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if out := c.String("out"); out != "" {
		if err := atomicfile.Write(out, data, 0o644); err != nil {
			return err
		}
	} else if _, err := c.App.Writer.Write(data); err != nil {
		return err
	}
	if code != 0 {
		fmt.Fprintf(c.App.ErrWriter, "note: the workload exited %d; the profile has only what it did before\n", code)
	}
	return nil
}

// notifyAll is a filter that hands every syscall of the native ABI but
// write to the agent at listenerPath; runc refuses SCMP_ACT_NOTIFY as the
// default action and for write, so those are allowed.
func notifyAll(listenerPath string) (*specs.LinuxSeccomp, error) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, err
	}
	var names []string
	for n := 0; n < 1024; n++ {
		name, err := libseccomp.ScmpSyscall(n).GetNameByArch(arch)
		if err != nil || name == "write" {
			continue
		}
		names = append(names, name)
	}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.Arch("SCMP_ARCH_" + archName(arch))},
		ListenerPath:  listenerPath,
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActNotify}},
	}, nil
}

func archName(a libseccomp.ScmpArch) string {
	switch a {
	case libseccomp.ArchAMD64:
		return "X86_64"
	case libseccomp.ArchARM64:
		return "AARCH64"
	}
	return "NATIVE"
}

// learnedProfile allows what was recorded and alwaysAllowed.
func learnedProfile(counts map[string]int) *specs.LinuxSeccomp {
	set := map[string]bool{}
	for n := range counts {
		set[n] = true
	}
	for _, n := range alwaysAllowed {
		set[n] = true
	}
	delete(set, "clone3")
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	arch, _ := libseccomp.GetNativeArch()
	enosys, eperm := uint(unix.ENOSYS), uint(unix.EPERM)
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{specs.Arch("SCMP_ARCH_" + archName(arch))},
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActAllow},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
}

// recorder is the seccomp agent: it receives the notification fd from runc
// on a unix socket, records every syscall and lets it continue.
type recorder struct {
	path string
	ln   *net.UnixListener
	done chan struct{}

	mu     sync.Mutex
	counts map[string]int
	err    error
}

func newRecorder(path string) (*recorder, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	r := &recorder{path: path, ln: ln, done: make(chan struct{}), counts: map[string]int{}}
	go r.serve()
	return r, nil
}

func (r *recorder) serve() {
	defer close(r.done)
	conn, err := r.ln.AcceptUnix()
	if err != nil {
		r.fail(err)
		return
	}
	defer conn.Close()
	fd, err := receiveFd(conn)
	if err != nil {
		r.fail(err)
		return
	}
	defer unix.Close(fd)
	for {
		// POLLHUP: no task uses the filter any more (the container is gone).
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			continue // the task died before we read it, or a signal
		}
		name, err := req.Data.Syscall.GetNameByArch(req.Data.Arch)
		if err != nil {
			name = fmt.Sprintf("syscall_%d", int(req.Data.Syscall))
		}
		r.mu.Lock()
		r.counts[name]++
		r.mu.Unlock()
		libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue})
	}
}

// receiveFd reads the container state runc sends with the notification fd.
func receiveFd(conn *net.UnixConn) (int, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err == nil && len(fds) > 0 {
			for _, extra := range fds[1:] {
				unix.Close(extra)
			}
			return fds[0], nil
		}
	}
	return -1, errors.New("runc sent no seccomp notification fd")
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// wait returns the counts once the container is gone.
func (r *recorder) wait() map[string]int {
	r.ln.Close()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

func (r *recorder) close() { r.ln.Close() }

// writeWatch runs a workload on an overlay of its root filesystem, so that
// what it writes outside the level's writable paths (which the read-only
// root would refuse) can be listed afterwards from the upper directory.
type writeWatch struct {
	merged, upper, lower string
	// mountpoints are the spec's mount destinations: runc makes those the
	// image lacks, the workload does not.
	mountpoints map[string]bool
}

// watchWrites mounts the overlay in dir and points s at it, writable.
func watchWrites(dir, rootfs string, s *specs.Spec) (*writeWatch, error) {
	w := &writeWatch{merged: filepath.Join(dir, "learn-merged"), upper: filepath.Join(dir, "learn-upper"), lower: rootfs}
	work := filepath.Join(dir, "learn-work")
	for _, d := range []string{w.merged, w.upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := "lowerdir=" + rootfs + ",upperdir=" + w.upper + ",workdir=" + work
	if err := unix.Mount("overlay", w.merged, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("mount an overlay of the root filesystem: %w", err)
	}
	s.Root.Path, s.Root.Readonly = w.merged, false
	w.mountpoints = map[string]bool{}
	for _, m := range s.Mounts {
		w.mountpoints[path.Clean("/"+m.Destination)] = true
	}
	// The root is writable but its directories are not the process
	// user's: CAP_DAC_OVERRIDE lets it write where it tries to, so that
	// the write is seen rather than refused (nothing of it reaches the
	// image: it goes to the overlay's upper directory).
	if c := s.Process.Capabilities; c != nil {
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
			if !slices.Contains(*set, "CAP_DAC_OVERRIDE") {
				*set = append(*set, "CAP_DAC_OVERRIDE")
			}
		}
	}
	return w, nil
}

func (w *writeWatch) close() {
	if w != nil {
		unix.Unmount(w.merged, unix.MNT_DETACH)
	}
}

// paths lists the paths the workload wrote, as rootfs.writablePaths
// entries: for a file it created, changed or removed, the directory it is
// in; for a directory it created (or emptied and made again), that
// directory, which a writablePaths entry creates. Entries below another
// are left out; the root itself cannot be writable and is left out too.
func (w *writeWatch) paths() ([]string, error) {
	lower, err := imagefs.New(w.lower)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(w.upper, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := path.Join(rel, e.Name())
			info, err := e.Info()
			if err != nil {
				return err
			}
			if info.IsDir() {
				if w.mountpoints["/"+p] {
					continue // made by runc for a mount
				}
				if fi, err := lower.Lstat(p); err == nil && fi.IsDir() && !opaque(filepath.Join(w.upper, p)) {
					if err := walk(p); err != nil { // copied up for what is below it
						return err
					}
					continue
				}
				set["/"+p] = true // made here
				continue
			}
			set["/"+path.Dir(p)] = true // a file written or removed in it
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, err
	}
	var out []string
	for p := range set {
		if p = path.Clean(p); p != "/" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	var top []string
	for _, p := range out {
		if len(top) == 0 || !strings.HasPrefix(p, top[len(top)-1]+"/") {
			top = append(top, p)
		}
	}
	return top, nil
}

func opaque(dir string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// reportWrites prints the paths as a ready rootfs.writablePaths list.
func reportWrites(out io.Writer, paths []string) {
	if len(paths) == 0 {
		fmt.Fprintln(out, "the workload wrote nothing outside the writable paths of its level")
		return
	}
	fmt.Fprintf(out, "the workload wrote outside the writable paths of its level; in a level that extends it:\n  rootfs:\n    writablePaths: [%s]\n", strings.Join(paths, ", "))
}
