package profiles

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Packs are opt-in syscall families a level can add to its seccomp allowlist
// (seccomp.packs), so that an image needing one of them does not have to run
// unconfined.
var Packs = map[string][]string{
	"io_uring":    {"io_uring_enter", "io_uring_register", "io_uring_setup"},
	"keyring":     {"add_key", "keyctl", "request_key"},
	"ptrace":      {"ptrace", "process_vm_readv", "process_vm_writev"},
	"personality": {"personality"},
	"perf":        {"perf_event_open"},
}

// StrictRemoved are the syscalls the strict profile takes out of the
// runtime-default allowlist: cross-process memory access and tracing,
// handle-based opens, NUMA memory policy, userfaultfd (a favourite of kernel
// exploits), SysV message queues, vmsplice, and obsolete calls. Each fails
// with ENOSYS, so libraries fall back where they can.
var StrictRemoved = []string{
	"kcmp", "pidfd_getfd", "process_vm_readv", "process_vm_writev", "ptrace",
	"name_to_handle_at", "open_by_handle_at",
	"get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy", "set_mempolicy_home_node",
	"userfaultfd", "vmsplice", "remap_file_pages",
	"msgctl", "msgget", "msgrcv", "msgsnd",
	"personality", "uselib", "ustat", "sysfs", "_sysctl",
}

// nativeArch is the seccomp name of the architecture this binary runs on.
var nativeArch = map[string]specs.Arch{
	"amd64":   specs.ArchX86_64,
	"arm64":   specs.ArchAARCH64,
	"386":     specs.ArchX86,
	"arm":     specs.ArchARM,
	"ppc64le": specs.ArchPPC64LE,
	"s390x":   specs.ArchS390X,
	"riscv64": specs.ArchRISCV64,
}[runtime.GOARCH]

type seccompKey struct {
	profile string
	compat  bool
	packs   string
	caps    string
	mode    SeccompMode
}

// seccompEntry is a computed profile and the syscall sets it allows, so that
// comparing a workload's profile with it costs no rebuild.
type seccompEntry struct {
	profile   *specs.LinuxSeccomp
	some, all map[string]bool
}

var (
	// mu guards seccompCache: profiles are computed once per distinct
	// (profile, arches, packs, capabilities) and shared read-only after.
	mu           sync.Mutex
	seccompCache = map[seccompKey]*seccompEntry{}
)

// Seccomp returns the seccomp profile of the level for a process whose
// bounding capability set is bounding (the moby rules depend on it: with
// CAP_SYS_ADMIN, for example, mount is allowed). It is computed once per
// distinct input and cached: callers must treat it as read-only and copy it
// before changing it.
//
// On top of RuntimeDefault the profile:
//   - lists only the native architecture unless compatArches is set;
//   - fails unknown syscalls with ENOSYS (defaultErrnoRet), so libc falls
//     back from new syscalls (clone3, faccessat2, ...);
//   - fails the known privileged syscalls the capabilities exclude with
//     EPERM, which is what users expect from mount or unshare;
//   - removes StrictRemoved for the strict profile and adds the level's packs;
//   - logs or only logs its denials as the level's seccomp.mode says
//     (applySeccompMode).
func Seccomp(l *Level, bounding []string) (*specs.LinuxSeccomp, error) {
	e, err := seccompFor(l, bounding)
	if err != nil {
		return nil, err
	}
	return e.profile, nil
}

// SeccompAllows returns the syscalls the level's profile (for the bounding
// set) allows for some arguments and for all arguments, as AllowedSyscalls
// computes them. The maps are shared: read them, never write them.
func SeccompAllows(l *Level, bounding []string) (some, all map[string]bool, err error) {
	e, err := seccompFor(l, bounding)
	if err != nil {
		return nil, nil, err
	}
	return e.some, e.all, nil
}

func seccompFor(l *Level, bounding []string) (*seccompEntry, error) {
	key := seccompKey{l.Seccomp.Profile, l.Seccomp.CompatArches, strings.Join(l.Seccomp.Packs, ","), capsKey(bounding), l.Seccomp.Mode}
	mu.Lock()
	defer mu.Unlock()
	if e, ok := seccompCache[key]; ok {
		return e, nil
	}
	caps := slices.Clone(bounding)
	sort.Strings(caps)
	p, err := buildSeccomp(key.profile, key.compat, l.Seccomp.Packs, slices.Compact(caps))
	if err != nil {
		return nil, err
	}
	applySeccompMode(p, key.mode)
	e := &seccompEntry{profile: p}
	e.some, e.all = AllowedSyscalls(p)
	seccompCache[key] = e
	return e, nil
}

// capsKey is the cache key of a capability set: sorted, without duplicates.
func capsKey(caps []string) string {
	caps = slices.Clone(caps)
	sort.Strings(caps)
	return strings.Join(slices.Compact(caps), ",")
}

func buildSeccomp(profile string, compat bool, packs, caps []string) (*specs.LinuxSeccomp, error) {
	if profile != SeccompRuntimeDefault && profile != SeccompStrict {
		return nil, fmt.Errorf("seccomp profile %q is not one of %s, %s", profile, SeccompRuntimeDefault, SeccompStrict)
	}
	if caps == nil {
		caps = []string{} // moby's profile code panics on nil capabilities
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("runtime-default seccomp profile: %w", err)
	}
	if !compat && nativeArch != "" {
		p.Architectures = []specs.Arch{nativeArch}
	}
	enosys, eperm := uint(syscall.ENOSYS), uint(syscall.EPERM)
	p.DefaultAction = specs.ActErrno
	p.DefaultErrnoRet = &enosys

	remove := map[string]bool{}
	if profile == SeccompStrict {
		for _, n := range StrictRemoved {
			remove[n] = true
		}
	}
	var added []string
	for _, pack := range packs {
		names, ok := Packs[pack]
		if !ok {
			return nil, fmt.Errorf("unknown seccomp pack %q (known: %s)", pack, strings.Join(PackNames(), ", "))
		}
		for _, n := range names {
			remove[n] = true // drop any conditional rule; the pack allows it outright
			added = append(added, n)
		}
	}
	var rules []specs.LinuxSyscall
	named := map[string]bool{}
	for _, r := range p.Syscalls {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return remove[n] })
		if len(r.Names) == 0 {
			continue
		}
		for _, n := range r.Names {
			named[n] = true
		}
		rules = append(rules, r)
	}
	if len(added) > 0 {
		sort.Strings(added)
		rules = append(rules, specs.LinuxSyscall{Names: slices.Compact(added), Action: specs.ActAllow})
		for _, n := range added {
			named[n] = true
		}
	}
	// Privileged syscalls that the capabilities excluded: EPERM, as users
	// expect from mount or unshare, instead of the ENOSYS default.
	var denied []string
	for _, r := range mobyseccomp.DefaultProfile().Syscalls {
		if r.Includes == nil || len(r.Includes.Caps) == 0 || r.Action != specs.ActAllow {
			continue
		}
		for _, n := range r.Names {
			if !named[n] && !remove[n] {
				denied = append(denied, n)
				named[n] = true
			}
		}
	}
	if len(denied) > 0 {
		sort.Strings(denied)
		rules = append(rules, specs.LinuxSyscall{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm})
	}
	p.Syscalls = rules
	return p, nil
}

// AllowedSyscalls returns the names a profile allows for at least some
// arguments, and those it allows for all arguments.
func AllowedSyscalls(p *specs.LinuxSeccomp) (some, all map[string]bool) {
	some, all = map[string]bool{}, map[string]bool{}
	if p == nil {
		return some, all
	}
	for _, r := range p.Syscalls {
		if !Permits(r.Action) {
			continue
		}
		for _, n := range r.Names {
			some[n] = true
			if len(r.Args) == 0 {
				all[n] = true
			}
		}
	}
	return some, all
}

// Permits reports whether a seccomp action lets the syscall run (or hands
// the decision to something other than the kernel).
func Permits(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap:
		return false
	}
	return true
}
