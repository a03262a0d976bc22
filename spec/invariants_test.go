package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/profiles/seccompmodel"
)

// fixtures are the input specs of testdata/ the invariants run on.
var fixtures = []string{"ctr-run", "cri-container", "cri-sandbox", "nonroot-own-seccomp", "real-ctr-run", "real-cri-container", "real-cri-sandbox"}

var hosts = map[string]Host{
	"no-apparmor": {UnprivilegedPortSysctl: true},
	"apparmor":    {AppArmor: true, UnprivilegedPortSysctl: true},
	"old-kernel":  {},
	// idmapped mounts, and a range of host ids the runtime reserved: root
	// images get a user namespace of their own (user.namespace auto).
	"userns": {UnprivilegedPortSysctl: true, IDMappedMounts: true},
}

// testRange is the range of host ids the invariants' runtime reserved.
var testRange = IDRange{HostID: 1879048192, Size: 65536}

// expectedRefusals lists the (fixture, level) pairs that are refused, with
// the field each refusal names, whatever the host: the CNI-less real CRI
// pod's sandbox runs in the host's network namespace, which only the test
// level host-network allows. Every other pair must harden: its fixture is
// what runc, containerd and CRI really generate. A pair refused but not
// listed, or listed but not refused, fails the invariants (so a regression
// that refuses everything cannot pass them by skipping).
var expectedRefusals = map[string]string{
	"real-cri-sandbox/baseline":   "linux.namespaces[network]",
	"real-cri-sandbox/restricted": "linux.namespaces[network]",
	"real-cri-sandbox/strict":     "linux.namespaces[network]",
}

// forEachHardened runs f for every fixture (with the runtime's and the
// container's facts), built-in level (and host-network, for the CNI-less
// real CRI pods) and host, except the pairs of expectedRefusals, which it
// checks are refused for the field listed.
func forEachHardened(t *testing.T, f func(t *testing.T, in *specs.Spec, l *profiles.Level, inputs Inputs, out *Result)) {
	for _, name := range fixtures {
		for _, ln := range append(profiles.BuiltinNames(), "host-network") {
			for hn, host := range hosts {
				t.Run(name+"/"+ln+"/"+hn, func(t *testing.T) {
					in := readSpec(t, name)
					inputs := Inputs{Host: host, Image: ImageInfo{Volumes: []string{"/data", "/var/lib/postgresql/data"}, WorkingDir: "/app", Rootfs: stateImage},
						Container: containerOf(t, name, in)}
					inputs.Container.VolumeDir = "/var/lib/hardened/volumes/" + name
					inputs = withFacts(name, inputs)
					if host.IDMappedMounts {
						inputs.Container.UserNamespace = testRange
					}
					res, err := Harden(in, testLevel(t, ln), inputs)
					want, expected := expectedRefusals[name+"/"+ln]
					var refused *RefusedError
					if errors.As(err, &refused) {
						if !expected {
							t.Fatalf("Harden(%s, %s) = %v: not an expected refusal", name, ln, err)
						}
						for _, v := range refused.Violations {
							if v.Field != want {
								t.Errorf("Harden(%s, %s) refused %s (rule %s), want only %s: %v", name, ln, v.Field, v.Rule, want, v)
							}
						}
						return
					}
					if err != nil {
						t.Fatalf("Harden(%s, %s) = %v", name, ln, err)
					}
					if expected {
						t.Fatalf("Harden(%s, %s) hardened it, want a refusal of %s", name, ln, want)
					}
					f(t, in, testLevel(t, ln), inputs, res)
				})
			}
		}
	}
}

func TestHardenIsIdempotent(t *testing.T) {
	forEachHardened(t, func(t *testing.T, _ *specs.Spec, l *profiles.Level, inputs Inputs, once *Result) {
		twice, err := Harden(once.Spec, l, inputs)
		if err != nil {
			t.Fatalf("Harden(Harden(s)) = %v", err)
		}
		if diff := cmp.Diff(once.Spec, twice.Spec); diff != "" {
			t.Errorf("Harden(Harden(s)) != Harden(s) (-once +twice):\n%s", diff)
		}
		for _, c := range twice.Changes {
			if !c.Note {
				t.Errorf("Harden(Harden(s)) changed %s %s: %s -> %s", c.Rule, c.Field, c.From, c.To)
			}
		}
	})
}

func TestCheckOfHardenedIsEmpty(t *testing.T) {
	forEachHardened(t, func(t *testing.T, _ *specs.Spec, l *profiles.Level, inputs Inputs, res *Result) {
		vs, err := Check(res.Spec, l, inputs)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) > 0 {
			t.Errorf("Check(Harden(s)) = %v, want none", vs)
		}
	})
}

func TestHardenLeavesInputUntouched(t *testing.T) {
	forEachHardened(t, func(t *testing.T, in *specs.Spec, _ *profiles.Level, _ Inputs, res *Result) {
		fresh := readSpec(t, fixtures[slices.IndexFunc(fixtures, func(n string) bool { return cmp.Equal(readSpec(t, n), in) })])
		if diff := cmp.Diff(fresh, in); diff != "" {
			t.Errorf("Harden changed its input (-before +after):\n%s", diff)
		}
		// The result shares no memory with the input: changing it leaves
		// the input alone.
		res.Spec.Process.Args[0] = "changed"
		res.Spec.Process.Env = append(res.Spec.Process.Env[:0], "X=1")
		if in.Process.Args[0] == "changed" || (len(in.Process.Env) > 0 && in.Process.Env[0] == "X=1") {
			t.Error("the hardened spec shares memory with the input")
		}
	})
}

// TestHardenNeverLoosens checks the hardened spec against the input: no
// capability, device, namespace sharing or writable path appears that the
// input did not have, and the workload's own stricter settings stay.
func TestHardenNeverLoosens(t *testing.T) {
	forEachHardened(t, func(t *testing.T, in *specs.Spec, l *profiles.Level, _ Inputs, res *Result) {
		out := res.Spec
		if in.Process.Capabilities != nil {
			for _, set := range [][2][]string{
				{in.Process.Capabilities.Bounding, out.Process.Capabilities.Bounding},
				{in.Process.Capabilities.Effective, out.Process.Capabilities.Effective},
				{in.Process.Capabilities.Permitted, out.Process.Capabilities.Permitted},
				{in.Process.Capabilities.Inheritable, out.Process.Capabilities.Inheritable},
				{in.Process.Capabilities.Ambient, out.Process.Capabilities.Ambient},
			} {
				for _, c := range set[1] {
					if !slices.Contains(set[0], c) {
						t.Errorf("capability %s added", c)
					}
				}
			}
		}
		if in.Process.User.UID != 0 && out.Process.User.UID != in.Process.User.UID {
			t.Errorf("non-root uid %d changed to %d", in.Process.User.UID, out.Process.User.UID)
		}
		if in.Process.NoNewPrivileges && !out.Process.NoNewPrivileges {
			t.Error("noNewPrivileges cleared")
		}
		if in.Root.Readonly && !out.Root.Readonly {
			t.Error("root.readonly cleared")
		}
		for _, p := range in.Linux.MaskedPaths {
			if !slices.Contains(out.Linux.MaskedPaths, p) {
				t.Errorf("masked path %s removed", p)
			}
		}
		for _, p := range in.Linux.ReadonlyPaths {
			if !slices.Contains(out.Linux.ReadonlyPaths, p) {
				t.Errorf("read-only path %s removed", p)
			}
		}
		// What is made writable is a tmpfs or the container's own volume
		// directory, and never the image's software.
		for _, m := range out.Mounts {
			if slices.ContainsFunc(in.Mounts, func(x specs.Mount) bool { return x.Destination == m.Destination }) {
				continue
			}
			switch {
			case m.Type == "tmpfs":
			case m.Type == "bind" && strings.HasPrefix(m.Source, "/var/lib/hardened/volumes/"):
			default:
				t.Errorf("mount %s (%s from %s) added", m.Destination, m.Type, m.Source)
			}
			for _, sys := range []string{"/usr", "/usr/bin", "/etc", "/bin", "/lib", "/sbin", "/var/lib/dpkg"} {
				if m.Destination == sys || strings.HasPrefix(sys, m.Destination+"/") {
					t.Errorf("mount %s added over the image's %s", m.Destination, sys)
				}
			}
		}
		if len(out.Linux.Devices) > len(in.Linux.Devices) {
			t.Errorf("devices added: %v", out.Linux.Devices)
		}
		if len(out.Linux.Namespaces) < len(in.Linux.Namespaces) {
			t.Errorf("namespaces removed: %v -> %v", in.Linux.Namespaces, out.Linux.Namespaces)
		}
		if out.Linux.Seccomp == nil {
			t.Error("no seccomp profile")
		} else {
			// The result runs nothing the level's profile does not surely
			// run, nor (when the input had one) the input's.
			native := seccompmodel.Native()
			om, err := seccompmodel.Load(out.Linux.Seccomp, native)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := profiles.Seccomp(l, out.Process.Capabilities.Bounding)
			lm, _ := seccompmodel.Load(want, native)
			if v := seccompmodel.Subset(om, lm); v != nil {
				t.Errorf("seccomp profile runs %s, which the level's denies", v)
			}
			if in.Linux.Seccomp != nil && !cmp.Equal(in.Linux.Seccomp, out.Linux.Seccomp) {
				im, err := seccompmodel.Load(in.Linux.Seccomp, native)
				if err != nil {
					t.Fatal(err)
				}
				if v := seccompmodel.Subset(om, im); v != nil {
					t.Errorf("seccomp profile runs %s, which the input's denies", v)
				}
			}
		}
		if in.Linux.Resources != nil && in.Linux.Resources.Pids != nil && in.Linux.Resources.Pids.Limit != nil && *in.Linux.Resources.Pids.Limit >= 0 {
			if *out.Linux.Resources.Pids.Limit > *in.Linux.Resources.Pids.Limit {
				t.Errorf("pids limit %d raised to %d", *in.Linux.Resources.Pids.Limit, *out.Linux.Resources.Pids.Limit)
			}
		}
		if in.Process.OOMScoreAdj != nil && (out.Process.OOMScoreAdj == nil || *out.Process.OOMScoreAdj < *in.Process.OOMScoreAdj) {
			t.Errorf("oomScoreAdj %d lowered", *in.Process.OOMScoreAdj)
		}
		if !cmp.Equal(in.Hooks, out.Hooks) || !cmp.Equal(in.Process.Scheduler, out.Process.Scheduler) || !cmp.Equal(in.Process.IOPriority, out.Process.IOPriority) ||
			!cmp.Equal(in.Linux.CgroupsPath, out.Linux.CgroupsPath) || !cmp.Equal(in.Root.Path, out.Root.Path) {
			t.Error("hooks, scheduling, cgroupsPath or root.path changed: rules only judge them")
		}
		// Mappings are only ever added, for root, onto the reserved range
		// (never the host's root), and then the process runs in them.
		if !cmp.Equal(in.Linux.UIDMappings, out.Linux.UIDMappings) || !cmp.Equal(in.Linux.GIDMappings, out.Linux.GIDMappings) {
			want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: testRange.HostID, Size: testRange.Size}}
			if len(in.Linux.UIDMappings) > 0 || in.Process.User.UID != 0 || !cmp.Equal(out.Linux.UIDMappings, want) || !cmp.Equal(out.Linux.GIDMappings, want) ||
				!slices.ContainsFunc(out.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace && n.Path == "" }) {
				t.Errorf("user namespace mappings %v -> %v: only a root process may get the reserved range %v", in.Linux.UIDMappings, out.Linux.UIDMappings, want)
			}
		}
		for _, r := range out.Process.Rlimits {
			i := slices.IndexFunc(in.Process.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == r.Type })
			if i >= 0 && (r.Hard > in.Process.Rlimits[i].Hard || r.Soft > in.Process.Rlimits[i].Soft) {
				t.Errorf("rlimit %s raised", r.Type)
			}
		}
		for _, r := range out.Process.Rlimits {
			if r.Type == "RLIMIT_NPROC" && !slices.ContainsFunc(in.Process.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == "RLIMIT_NPROC" }) {
				t.Error("RLIMIT_NPROC set")
			}
		}
	})
}
