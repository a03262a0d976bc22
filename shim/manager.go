package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"

	"github.com/hardened-runtime/hardened/policy"
)

// RuntimeName is the runtime type containerd knows this shim by.
const RuntimeName = "io.containerd.hardened.v2"

// NewManager returns the shim manager: containerd's runc manager with our
// own socket directory.
func NewManager() shim.Shim {
	return &groupingManager{Shim: manager.NewShimManager(RuntimeName)}
}

// groupingManager keeps hardened shims apart from runc shims.
//
// The runc manager's Start puts every container that carries
// io.containerd.runc.v2.group or io.kubernetes.cri.sandbox-id into one shim
// process, found by a socket whose name hashes (containerd address,
// namespace, group id) without the runtime name. A hardened container whose
// group already had a plain runc shim would be handed to that shim and run
// unhardened. Start therefore gives the runc manager a socket directory of
// our own (<socket dir>/hardened): same hash, other directory, so hardened
// containers group only with hardened ones, and pod grouping among them
// keeps working. The spec and the rest of Start stay untouched.
type groupingManager struct {
	shim.Shim
}

// socketSubdir is the directory below containerd's shim socket directory
// that holds the sockets of hardened shims.
const socketSubdir = "hardened"

// Start also does, in this short-lived process and while the long-running
// shim it spawns is still starting up, the work Create would otherwise do
// on the container's critical path: it looks up the image the container
// runs, loads the policy and hardens the bundle (hardenBundle). Create
// then only checks the bundle's record (preparedRecord). The long-running
// shim also never loads the gRPC client nor parses the policy for such a
// container: it stays smaller.
//
// If that work fails, Start still starts the shim and Create does it all
// again, and refuses the container with the error where containerd and
// the kubelet show it: this process has no log (its output is the
// bootstrap protocol).
func (m *groupingManager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	ns := params.GetNamespace()
	if ns == "" {
		ns, _ = namespaces.Namespace(ctx)
	}
	bundle, err := os.Getwd() // containerd starts the shim in the bundle
	if err != nil {
		return nil, err
	}
	// This process lives for one container's start: collecting garbage
	// would only cost it time.
	debug.SetGCPercent(-1)
	own := withOwnSocketDir(params)
	if err := linkSocketDir(bundle, own.GetSocketDir()); err != nil {
		return nil, fmt.Errorf("hardened: %w", err)
	}
	// The look-up is the longer of the two: it runs on this goroutine,
	// the spawn (mostly a fork and exec, waiting in the kernel) beside it.
	t := newTimer()
	type started struct {
		res *bootapi.BootstrapResult
		err error
		at  time.Duration
	}
	spawn := make(chan started, 1)
	go func() {
		res, err := m.Shim.Start(ctx, own)
		spawn <- started{res, err, time.Since(t.t0)}
	}()
	prepareBundle(ctx, params, ns, bundle, t)
	st := <-spawn
	res, err, spawned := st.res, st.err, st.at
	if os.Getenv(StartTimingEnv) != "" {
		_ = os.WriteFile(filepath.Join(bundle, "hardened-start-timing.txt"),
			[]byte(fmt.Sprintf("%s | shim spawned=%s joined=%s\n", t, spawned.Round(10*time.Microsecond), time.Since(t.t0).Round(10*time.Microsecond))), 0o600)
	}
	return res, err
}

// prepareBundle is Start's share of Create's work; see Start.
func prepareBundle(ctx context.Context, params *bootapi.BootstrapParams, ns, bundle string, t *timer) {
	var ro runtimeoptions.Options
	found, err := params.FindExtension(&ro)
	if err != nil {
		return
	}
	path := policyPath("")
	if found {
		path = policyPath(ro.ConfigPath)
	}
	_ = prepareAndHarden(ctx, params.GetContainerdGrpcAddress(), ns, params.GetInstanceID(), bundle, path, "start", t)
}

// prepareAndHarden looks the image up (Prepare) and hardens the bundle
// under the policy at policyPath, as a short-lived process does it for
// Create (by: "start" or "prepare"); Create then only checks the record
// (preparedRecord).
func prepareAndHarden(ctx context.Context, address, ns, id, bundle, policyPath, by string, t *timer) error {
	// The look-up waits on containerd and is the long pole: it starts at
	// once on this goroutine; the policy and the spec are read beside it.
	r := &imageResolver{address: address, cacheDir: imageCacheDir(), t: t.sub("lookup:")}
	defer r.close()
	type loaded struct {
		pol *policy.Policy
		in  *specs.Spec
		err error
	}
	load := make(chan loaded, 1)
	lt := t.sub("load:")
	go func() {
		pol, err := policy.Load(policyPath)
		if err != nil {
			load <- loaded{err: fmt.Errorf("invalid node policy %s: %w", policyPath, err)}
			return
		}
		lt.mark("policy")
		in, err := readSpec(bundle)
		lt.mark("read")
		load <- loaded{pol, in, err}
	}()
	// The image facts go to the bundle (ImageFile) whatever follows: Create
	// reads them to check the rootfs of a container under a signatures
	// policy (one without an image too), and to classify the error when
	// hardening failed.
	img, lookErr := r.prepare(ctx, ns, id, bundle)
	ld := <-load
	if ld.err != nil {
		return ld.err
	}
	if lookErr != nil {
		return lookErr
	}
	pol, in := ld.pol, ld.in
	t.mark("image")
	if !pol.Signatures.Builtin && img.Name != "" {
		// What binds the container to the image whose signature is
		// checked; Create reads the mounts from the image facts.
		if err := r.snapshotFacts(ctx, ns, id, &img); err != nil {
			return err
		}
		if err := writeJSONAtomic(filepath.Join(bundle, ImageFile), img); err != nil {
			return fmt.Errorf("write %s: %w", ImageFile, err)
		}
		t.mark("snapshot")
	}
	rootPath := ""
	if in.Root != nil {
		rootPath = in.Root.Path
	}
	v, err := checkSignature(ctx, pol, policyPath, img, rootPath, bundle)
	if err != nil {
		writeRefusal(bundle, err)
		return err
	}
	t.mark("signature")
	_, err = hardenBundle(pol, policyPath, newHostProbe(address), ns, bundle, in, img, v, by, t)
	return err
}

// StartTimingEnv, when set, makes `shim start` leave the time of each of
// its steps in <bundle>/hardened-start-timing.txt (a diagnostic: it has no
// log).
const StartTimingEnv = "HARDENED_START_TIMING"

// timer records the elapsed time at named steps.
type timer struct {
	t0       time.Time
	steps    []string
	children []*timer
}

func newTimer() *timer { return &timer{t0: time.Now()} }

func (t *timer) mark(name string) {
	if t != nil {
		t.steps = append(t.steps, fmt.Sprintf("%s=%s", name, time.Since(t.t0).Round(10*time.Microsecond)))
	}
}

func (t *timer) String() string {
	s := strings.Join(t.steps, " ")
	for _, c := range t.children {
		s += " [" + c.String() + "]"
	}
	return s
}

// sub is a timer with the same start for a concurrent part of the work,
// printed after t's steps (nil if t is nil).
func (t *timer) sub(name string) *timer {
	if t == nil {
		return nil
	}
	c := &timer{t0: t.t0, steps: []string{name}}
	t.children = append(t.children, c)
	return c
}

// ImageFile is where Prepare leaves the image facts in the bundle.
const ImageFile = "hardened-image.json"

// socketDirLink is the symlink in the bundle by which the long-running shim
// finds its socket directory when it exits (pkg/shim's cleanupSockets). The
// shim package points it at containerd's directory, or leaves it out when
// containerd passes none and the default applies; either way the shim would
// look for its socket in the wrong place and leave ours behind, one per
// container. Pointing it at our directory makes the shim remove its own.
const socketDirLink = "s"

func linkSocketDir(bundle, dir string) error {
	link := filepath.Join(bundle, socketDirLink)
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace socket dir link: %w", err)
	}
	if err := os.Symlink(dir, link); err != nil {
		return fmt.Errorf("link socket dir: %w", err)
	}
	return nil
}

func withOwnSocketDir(params *bootapi.BootstrapParams) *bootapi.BootstrapParams {
	p := proto.Clone(params).(*bootapi.BootstrapParams)
	dir := p.GetSocketDir()
	if dir == "" {
		dir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	dir = filepath.Join(dir, socketSubdir)
	p.SocketDir = &dir
	return p
}
