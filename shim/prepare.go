package shim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/sys/reaper"
)

// PrepareCommand is the first argument with which the shim binary runs as
// a short-lived helper that looks up a container's image (see Prepare).
// containerd always passes flags first, so it cannot clash with a shim
// invocation.
const PrepareCommand = "hardened-prepare"

// prepareTimeout bounds the helper process: it makes a few look-ups in
// containerd, each bounded by lookupTimeout.
const prepareTimeout = 3 * lookupTimeout

// Prepare looks up, from containerd's own records, the image that container
// id of namespace ns runs and leaves the facts in the bundle (ImageFile),
// where Create reads them.
//
// It always runs in a short-lived process: `shim start` for a container
// that gets a shim of its own, a PrepareCommand child of the long-running
// shim for a container that joins a pod's shim (containerd does not run
// `shim start` for those). The long-running shim, which lives as long as
// its containers and whose memory is paid per pod on every node, so never
// holds a gRPC connection, a client or the look-up's buffers.
func Prepare(ctx context.Context, address, ns, id, bundle string) error {
	return prepare(ctx, address, ns, id, bundle, nil)
}

func prepare(ctx context.Context, address, ns, id, bundle string, t *timer) error {
	r := &imageResolver{address: address, cacheDir: imageCacheDir(), t: t}
	defer r.close()
	_, err := r.prepare(ctx, ns, id, bundle)
	return err
}

// prepare looks the image up and leaves the facts in the bundle.
func (r *imageResolver) prepare(ctx context.Context, ns, id, bundle string) (imageRecord, error) {
	img, err := r.resolve(ctx, ns, id)
	if err != nil {
		return img, err
	}
	if err := writeJSONAtomic(filepath.Join(bundle, ImageFile), img); err != nil {
		return img, fmt.Errorf("write %s: %w", ImageFile, err)
	}
	return img, nil
}

// IsPrepare reports whether the shim binary was run as PrepareCommand.
func IsPrepare(args []string) bool {
	return len(args) > 1 && args[1] == PrepareCommand
}

// RunPrepare is the shim binary's main when IsPrepare: it runs Prepare
// with the flags of args (os.Args[2:]) and returns the exit code; the
// error goes to stderr as one line, for the parent to pass on.
func RunPrepare(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(PrepareCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("address", "", "containerd's gRPC address")
	ns := fs.String("namespace", "", "containerd namespace of the container")
	id := fs.String("id", "", "container id")
	bundle := fs.String("bundle", "", "the container's bundle directory")
	policyFile := fs.String("policy", "", "the node policy file; with it, also harden the bundle")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	debug.SetGCPercent(-1) // a few calls, then exit: no garbage to collect
	if *address == "" || *ns == "" || *id == "" || *bundle == "" {
		fmt.Fprintln(stderr, "hardened-prepare: --address, --namespace, --id and --bundle are required")
		return 2
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), *ns), prepareTimeout)
	defer cancel()
	var err error
	if *policyFile == "" {
		err = Prepare(ctx, *address, *ns, *id, *bundle)
	} else {
		err = prepareAndHarden(ctx, *address, *ns, *id, *bundle, *policyFile, "prepare", nil)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// prepareInChild runs Prepare in a PrepareCommand child of this shim. The
// child is started and waited for through containerd's reaper: the shim is
// a subreaper that reaps every child on SIGCHLD, so a plain exec.Cmd.Wait
// would race it. /proc/self/exe still runs this binary when a node upgrade
// has replaced the file since the shim started.
func prepareInChild(address, ns, id, bundle, policyPath string) error {
	cmd := exec.Command("/proc/self/exe", PrepareCommand,
		"--address", address, "--namespace", ns, "--id", id, "--bundle", bundle, "--policy", policyPath)
	cmd.Dir = bundle
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return fmt.Errorf("start the image look-up: %w", err)
	}
	status, err := reaper.Default.WaitTimeout(cmd, ec, prepareTimeout+time.Second)
	if err != nil {
		return fmt.Errorf("image look-up: %w", err)
	}
	if status != 0 {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", status)
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}
