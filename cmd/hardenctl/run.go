package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/urfave/cli/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/imagefs"
	"github.com/hardened-runtime/hardened/spec"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run an image layout or a root filesystem with runc under a level, without containerd",
		ArgsUsage: "IMAGE-LAYOUT|IMAGE.tar|ROOTFS [-- CMD ARGS...]",
		Description: `Unpacks an OCI image layout (a directory, or a .tar as ` + "`ctr image export`" + ` and
skopeo write them; whiteouts applied) or takes a root filesystem directory,
builds the spec containerd builds for ` + "`ctr run`" + ` (the image's env, user, working
directory, entrypoint and cmd; CMD ARGS replace the last two), hardens it with the
same engine as the shim, and runs it with runc: stdio attached, the exit code
passed on, SIGINT and SIGTERM forwarded. Everything it made (bundle, runc state,
cgroup) is removed afterwards, also on Ctrl-C.

--compare runs the command twice, plain and hardened, and prints both outputs
side by side with the lines that differ marked: the quickest way to see what a
level breaks.

EXAMPLES:
   hardenctl run ./busybox-layout -- id
   hardenctl run --level strict --explain ./app.tar
   hardenctl run --compare ./busybox-layout -- cat /proc/self/status
   hardenctl run --seccomp learned.json ./rootfs -- /bin/app
   hardenctl run --seccomp-mode audit --denials ./app.tar      # trial: what the level would deny`,
		Flags: append(levelFlags,
			&cli.BoolFlag{Name: "explain", Usage: "print the changes and their reasons (stderr) before running"},
			&cli.BoolFlag{Name: "compare", Usage: "run plain and hardened; print both outputs side by side"},
			&cli.StringFlag{Name: "seccomp", Usage: "a seccomp profile (OCI JSON, e.g. from hardenctl learn) to use instead of the level's"},
			seccompModeFlag, denialsFlag,
			&cli.StringFlag{Name: "runc", Value: "runc", Usage: "the runc binary"},
		),
		Before: checkOutput,
		Action: runAction,
	}
}

// workload is an unpacked image or a root filesystem, ready for bundles.
type workload struct {
	dir    string // temp dir that holds everything; removed by cleanup
	rootfs string
	config v1.Config
	name   string
	// started, when set, gets the pid of each container's init process
	// as soon as runc has created it.
	started func(id string, pid int)
}

// loadWorkload unpacks src into a temp dir.
// containerID is the runc container id of this hardenctl's workload.
func containerID() string { return fmt.Sprintf("hardenctl-%d", os.Getpid()) }

// workloadSpec loads the command's workload (its first argument) and
// builds the spec ctr run would for the command after it (or "--"); the
// caller removes w.dir.
func workloadSpec(ctx context.Context, c *cli.Context) (*workload, *specs.Spec, error) {
	w, err := loadWorkload(ctx, c.Args().First())
	if err != nil {
		return nil, nil, err
	}
	args := c.Args().Slice()[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	plain, err := w.baseSpec(ctx, containerID(), args)
	if err != nil {
		os.RemoveAll(w.dir)
		return nil, nil, err
	}
	return w, plain, nil
}

func loadWorkload(ctx context.Context, src string) (*workload, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hardenctl-run-")
	if err != nil {
		return nil, err
	}
	w := &workload{dir: dir, name: filepath.Base(src)}
	fail := func(err error) (*workload, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	layoutDir := src
	switch {
	case !fi.IsDir():
		layoutDir = filepath.Join(dir, "layout")
		if err := untarFile(ctx, src, layoutDir); err != nil {
			return fail(fmt.Errorf("%s: not an image layout tar: %w", src, err))
		}
	case !exists(filepath.Join(src, "oci-layout")):
		w.rootfs, _ = filepath.Abs(src) // a root filesystem
		w.config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		return w, nil
	}
	img, ref, err := imageFromLayout(layoutDir)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", src, err))
	}
	if ref != "" {
		w.name = ref
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fail(err)
	}
	w.config = cf.Config
	w.rootfs = filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(w.rootfs, 0o755); err != nil {
		return fail(err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fail(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fail(fmt.Errorf("layer %d: %w", i, err))
		}
		_, err = archive.Apply(ctx, w.rootfs, rc)
		rc.Close()
		if err != nil {
			return fail(fmt.Errorf("unpack layer %d: %w", i, err))
		}
	}
	return w, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// imageFromLayout picks the image for this machine's platform (or the only
// one) from an OCI layout, and its reference name if the index has one.
func imageFromLayout(dir string) (v1.Image, string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, "", err
	}
	for depth := 0; depth < 3; depth++ {
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, "", err
		}
		if len(m.Manifests) == 0 {
			return nil, "", errors.New("the layout's index lists no image")
		}
		pick := m.Manifests[0]
		for _, d := range m.Manifests {
			if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == goruntime.GOARCH {
				pick = d
				break
			}
		}
		ref := pick.Annotations["org.opencontainers.image.ref.name"]
		if pick.MediaType.IsIndex() {
			if idx, err = idx.ImageIndex(pick.Digest); err != nil {
				return nil, "", err
			}
			continue
		}
		img, err := idx.Image(pick.Digest)
		return img, ref, err
	}
	return nil, "", errors.New("image indexes nested too deep")
}

func untarFile(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_, err = archive.Apply(ctx, dir, f)
	return err
}

// baseSpec is what containerd builds for `ctr run`: its default spec with
// the image's config.
func (w *workload) baseSpec(ctx context.Context, id string, args []string) (*specs.Spec, error) {
	process := append(append([]string{}, w.config.Entrypoint...), w.config.Cmd...)
	if len(args) > 0 {
		process = args
	}
	if len(process) == 0 {
		return nil, usageError{"no command: the image has no entrypoint or cmd; give one after --"}
	}
	uid, gid, err := resolveUser(w.rootfs, w.config.User)
	if err != nil {
		return nil, err
	}
	cwd := w.config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	ctx = namespaces.WithNamespace(ctx, "hardenctl")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: id},
		oci.WithRootFSPath(w.rootfs), oci.WithProcessArgs(process...), oci.WithEnv(w.config.Env),
		oci.WithProcessCwd(cwd), oci.WithUIDGID(uid, gid))
	if err != nil {
		return nil, err
	}
	s.Process.Terminal = false
	// One level below the cgroup root (containerd's default adds the
	// namespace above it): runc removes all of it when the container goes.
	s.Linux.CgroupsPath = "/" + id
	return s, nil
}

// resolveUser turns an image's USER (uid, uid:gid, name, name:group) into
// ids through the rootfs's own /etc/passwd and /etc/group, as containerd
// does for `ctr run`.
func resolveUser(rootfs, user string) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err := lookupID(filepath.Join(rootfs, "etc/passwd"), u, true)
	if err != nil {
		return 0, 0, fmt.Errorf("image USER %q: %w", user, err)
	}
	if hasGroup {
		if gid, _, err = lookupID(filepath.Join(rootfs, "etc/group"), g, false); err != nil {
			return 0, 0, fmt.Errorf("image USER %q: %w", user, err)
		}
	}
	return uid, gid, nil
}

// lookupID finds name (or a number) in a passwd or group file: its id and,
// for passwd, the primary group.
func lookupID(file, name string, passwd bool) (uint32, uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		// A number: the primary group from passwd if the uid is there, else 0.
		if passwd {
			if f, err := os.Open(file); err == nil {
				defer f.Close()
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					if p := strings.Split(sc.Text(), ":"); len(p) > 3 && p[2] == name {
						g, _ := strconv.ParseUint(p[3], 10, 32)
						return uint32(n), uint32(g), nil
					}
				}
			}
		}
		return uint32(n), 0, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("no %s in the image to resolve %q", filepath.Base(file), name)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) > 2 && p[0] == name {
			id, _ := strconv.ParseUint(p[2], 10, 32)
			var gid uint64
			if passwd && len(p) > 3 {
				gid, _ = strconv.ParseUint(p[3], 10, 32)
			}
			return uint32(id), uint32(gid), nil
		}
	}
	return 0, 0, fmt.Errorf("%q is not in the image's %s", name, filepath.Base(file))
}

func runAction(c *cli.Context) error {
	if c.NArg() < 1 {
		return usageError{"run: give an image layout, an image .tar or a root filesystem"}
	}
	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	// Signals are handled, not fatal, from here on: everything made below
	// is removed on the way out.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go forwardSignals(sigs, stop)
	// A closed stdout (| head) must fail a write, not kill hardenctl before
	// it cleaned up.
	signal.Ignore(syscall.SIGPIPE)
	w, plain, err := workloadSpec(ctx, c)
	if err != nil {
		return err
	}
	defer os.RemoveAll(w.dir)
	id := containerID()
	hardened, res, err := w.harden(c, plain)
	if err != nil {
		return err
	}
	if c.Bool("explain") {
		printChanges(c.App.ErrWriter, res.Changes)
	}
	if c.Bool("denials") {
		d, err := watchDenials(ctx, w, res.Level, hardened)
		if err != nil {
			return err
		}
		defer d.report(c)
	}
	runc := c.String("runc")
	if !c.Bool("compare") {
		code, err := w.runc(ctx, runc, id, hardened, os.Stdin, c.App.Writer, c.App.ErrWriter)
		if err != nil {
			return err
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	}
	var outs [2]bytes.Buffer
	var codes [2]int
	for i, s := range []*specs.Spec{plain, hardened} {
		if codes[i], err = w.runc(ctx, runc, fmt.Sprintf("%s-%d", id, i), s, nil, &outs[i], &outs[i]); err != nil {
			return err
		}
	}
	return printCompare(c, res.Level, codes, outs[0].String(), outs[1].String())
}

// harden applies the level (and --seccomp) to a copy of s.
func (w *workload) harden(c *cli.Context, s *specs.Spec) (*specs.Spec, *spec.Result, error) {
	level, _, err := pickLevel(c, s)
	if err != nil {
		return nil, nil, err
	}
	if level, err = withSeccompMode(c, level); err != nil {
		return nil, nil, err
	}
	host, err := hostFacts(c)
	if err != nil {
		return nil, nil, err
	}
	img := spec.ImageInfo{Name: w.name, User: w.config.User, WorkingDir: w.config.WorkingDir}
	if root, err := imagefs.New(w.rootfs); err == nil {
		img.Rootfs = root // links resolve inside the image, never on the host
	}
	for v := range w.config.Volumes {
		img.Volumes = append(img.Volumes, v)
	}
	// hardenctl itself chose the root filesystem (the image it unpacked, or
	// the directory given) and the cgroup: judge the spec as containerd
	// writes it (the bundle's rootfs, /<namespace>/<id>), and run there.
	in := *s
	in.Root = &specs.Root{Path: "rootfs", Readonly: s.Root.Readonly}
	linux := *s.Linux
	linux.CgroupsPath = "/hardenctl" + s.Linux.CgroupsPath
	in.Linux = &linux
	res, err := spec.Harden(&in, level, spec.Inputs{Image: img, Host: host, Container: spec.ContainerInfo{Namespace: "hardenctl"}})
	if err != nil {
		return nil, nil, err
	}
	out := res.Spec
	out.Root.Path, out.Linux.CgroupsPath = s.Root.Path, s.Linux.CgroupsPath
	if f := c.String("seccomp"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("--seccomp: %w", err)
		}
		var sc specs.LinuxSeccomp
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			return nil, nil, fmt.Errorf("--seccomp %s: %w", f, err)
		}
		out.Linux.Seccomp = &sc
		res.Changes = append(res.Changes, spec.Change{Rule: "seccomp", Field: "linux.seccomp", From: "level's profile", To: f, Reason: "--seccomp"})
	}
	return out, res, nil
}

// runc runs s in a bundle of its own with runc and returns the exit code.
// The bundle, runc's state and the container are gone when it returns.
func (w *workload) runc(ctx context.Context, runc, id string, s *specs.Spec, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	bundle := filepath.Join(w.dir, "bundle-"+id)
	state := filepath.Join(w.dir, "runc-state")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(bundle)
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, err
	}
	// A non-root user must be able to reach the root filesystem.
	os.Chmod(w.dir, 0o711)
	args := []string{"--root", state, "run", "--bundle", bundle}
	var pidFile string
	if w.started != nil {
		pidFile = filepath.Join(w.dir, id+".pid")
		args = append(args, "--pid-file", pidFile)
	}
	cmd := exec.Command(runc, append(args, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// runc in a process group of its own: hardenctl forwards the signals
	// itself, once (forwardSignals).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", runc, err)
	}
	setRunning(&running{cmd: cmd, runc: runc, state: state, id: id})
	if pidFile != "" {
		go watchPidFile(pidFile, id, w.started)
	}
	err = cmd.Wait()
	setRunning(nil)
	// runc run deletes the container when it exits; make sure of it.
	exec.Command(runc, "--root", state, "delete", "--force", id).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// printCompare prints the two runs side by side, "≠" where lines differ.
// running is the runc process signals go to.
type running struct {
	cmd             *exec.Cmd
	runc, state, id string
}

var (
	// runningMu guards current.
	runningMu sync.Mutex
	current   *running
)

func setRunning(r *running) {
	runningMu.Lock()
	current = r
	runningMu.Unlock()
}

// forwardSignals passes SIGINT, SIGTERM and SIGHUP to the running runc
// (which passes them to the container). A container's PID 1 ignores
// signals it has no handler for, so a second signal, or 5 seconds
// without an exit, kills the container. Before runc runs, a signal
// cancels the unpacking.
func forwardSignals(sigs <-chan os.Signal, cancel func()) {
	var deadline <-chan time.Time
	for {
		select {
		case sig, ok := <-sigs:
			if !ok {
				return
			}
			runningMu.Lock()
			r := current
			runningMu.Unlock()
			if r == nil {
				cancel()
				continue
			}
			if deadline != nil { // the second one
				exec.Command(r.runc, "--root", r.state, "kill", r.id, "KILL").Run()
				continue
			}
			r.cmd.Process.Signal(sig)
			deadline = time.After(5 * time.Second)
		case <-deadline:
			runningMu.Lock()
			r := current
			runningMu.Unlock()
			if r != nil {
				exec.Command(r.runc, "--root", r.state, "kill", r.id, "KILL").Run()
			}
			deadline = nil
		}
	}
}

func printCompare(c *cli.Context, level string, codes [2]int, plain, hardened string) error {
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, map[string]any{
			"plain":    map[string]any{"exit": codes[0], "output": plain},
			"hardened": map[string]any{"level": level, "exit": codes[1], "output": hardened},
		})
	}
	lines := func(s string) []string {
		return strings.Split(strings.ReplaceAll(strings.TrimRight(s, "\n"), "\t", " "), "\n")
	}
	a, b := lines(plain), lines(hardened)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, " \tplain (exit %d)\thardened, level %s (exit %d)\n", codes[0], level, codes[1])
	for i := 0; i < max(len(a), len(b)); i++ {
		var l, r string
		if i < len(a) {
			l = a[i]
		}
		if i < len(b) {
			r = b[i]
		}
		mark := " "
		if l != r {
			mark = "≠"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, l, r)
	}
	return tw.Flush()
}
