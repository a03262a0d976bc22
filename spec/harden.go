package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// rule is one control. apply reads and changes h.spec (or h.proc) and
// records what it did with h.change, h.note and h.refuse.
type rule struct {
	name  string
	apply func(h *hardening)
}

// rules run in this order. Process rules come first, seccomp after the
// capabilities (its content depends on them), paths and mounts after the
// root filesystem rule has added its tmpfs mounts. Rule fields comes
// first: it judges the spec as the client sent it (classify.go).
var rules = []rule{
	{"fields", ruleFields},
	{"privileged", rulePrivileged},
	{"user", ruleUser},
	{"capabilities", ruleCapabilities},
	{"no-new-privileges", ruleNoNewPrivileges},
	{"seccomp", ruleSeccomp},
	{"apparmor", ruleAppArmor},
	{"rootfs", ruleRootfs},
	{"mounts", ruleMounts},
	{"namespaces", ruleNamespaces},
	{"devices", ruleDevices},
	{"kernel-paths", ruleKernelPaths},
	{"sysctls", ruleSysctls},
	{"hooks", ruleHooks},
	{"root-path", ruleRootPath},
	{"cgroups", ruleCgroups},
	{"user-namespace", ruleUserNamespace},
	{"scheduling", ruleScheduling},
	{"oom-score", ruleOOMScore},
	{"resources", ruleResources},
	{"annotations", ruleAnnotations},
	{"limits", ruleLimits},
}

// processRules are the rules HardenProcess applies to an exec'd process.
var processRules = []rule{
	{"fields", ruleProcessFields},
	{"user", ruleUser},
	{"capabilities", ruleCapabilities},
	{"no-new-privileges", ruleNoNewPrivileges},
	{"apparmor", ruleAppArmor},
	{"scheduling", ruleScheduling},
	{"oom-score", ruleOOMScore},
	{"limits", ruleRlimits},
}

// RuleNames lists the rules in the order they run.
func RuleNames() []string {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.name
	}
	return names
}

// hardening is the state of one Harden, Check or HardenProcess call.
type hardening struct {
	level *profiles.Level
	in    Inputs
	spec  *specs.Spec
	// proc is the process being hardened: spec.Process, or an exec'd one.
	proc *specs.Process
	// container is the container's hardened spec when proc is an exec'd
	// process; nil otherwise.
	container *specs.Spec
	rule      string
	changes   []Change
	refusals  []Violation
	// writable is what rule rootfs made writable (Result.Writable).
	writable []Writable
}

func (h *hardening) change(field, from, to, reason string) {
	h.changes = append(h.changes, Change{Rule: h.rule, Field: field, From: from, To: to, Reason: reason})
}

func (h *hardening) note(field, reason string) {
	h.changes = append(h.changes, Change{Rule: h.rule, Field: field, Reason: reason, Note: true})
}

func (h *hardening) refuse(field, value, reason, fix string) {
	h.refusals = append(h.refusals, Violation{Rule: h.rule, Field: field, Value: value, Reason: reason, Fix: fix, Refused: true})
}

func (h *hardening) run(rs []rule) {
	for _, r := range rs {
		h.rule = r.name
		r.apply(h)
	}
}

// validate rejects specs that no rule can reason about.
func validate(s *specs.Spec) error {
	if s == nil {
		return errors.New("spec is empty")
	}
	if s.Process == nil {
		return errors.New("spec has no process")
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("spec has no root.path")
	}
	return nil
}

func prepare(s *specs.Spec, level *profiles.Level, in Inputs) (*hardening, error) {
	if level == nil {
		return nil, errors.New("no level given")
	}
	if err := validate(s); err != nil {
		return nil, err
	}
	// The workload's seccomp profile is most of a CRI spec and is usually
	// replaced: copy everything else now, and the profile only if ruleSeccomp
	// keeps it. Until then the copy shares it read-only.
	shallow := *s
	var seccomp *specs.LinuxSeccomp
	if s.Linux != nil {
		linux := *s.Linux
		seccomp, linux.Seccomp = linux.Seccomp, nil
		shallow.Linux = &linux
	}
	c := deepCopy(&shallow)
	if c.Linux == nil {
		c.Linux = &specs.Linux{}
	}
	c.Linux.Seccomp = seccomp
	// Most specs get 10 to 20 changes: one allocation for them.
	return &hardening{level: level, in: in, spec: c, proc: c.Process, changes: make([]Change, 0, 24)}, nil
}

// Harden returns a hardened copy of s under level and the list of changes.
// When the level refuses the spec, the error is a *RefusedError listing
// every violation, and the Result still holds the changes made so far.
// Other errors mean the input was malformed.
func Harden(s *specs.Spec, level *profiles.Level, in Inputs) (*Result, error) {
	h, err := prepare(s, level, in)
	if err != nil {
		return nil, fmt.Errorf("harden: %w", err)
	}
	h.run(rules)
	res := &Result{Level: level.Name, Spec: h.spec, Changes: h.changes, Writable: h.writable}
	if len(h.refusals) > 0 {
		return res, &RefusedError{Level: level.Name, Violations: h.refusals}
	}
	return res, nil
}

// Check reports how s violates level without changing it: every change
// Harden would make and every refusal. Notes are not violations. The error
// is only for malformed input.
func Check(s *specs.Spec, level *profiles.Level, in Inputs) ([]Violation, error) {
	h, err := prepare(s, level, in)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	h.run(rules)
	var vs []Violation
	for _, c := range h.changes {
		if c.Note {
			continue
		}
		vs = append(vs, Violation{
			Rule: c.Rule, Field: c.Field, Value: c.From, Reason: c.Reason,
			Fix: fmt.Sprintf("set %s to %s", c.Field, c.To),
		})
	}
	return append(vs, h.refusals...), nil
}

// HardenProcess hardens a process exec'd into a container whose hardened
// spec is container (read from the bundle, not containerd's stored spec).
// The exec gets the same treatment as the container's init process: a root
// user becomes the container's own user, capabilities never exceed the
// level's, noNewPrivileges is set and the AppArmor profile applied.
func HardenProcess(p *specs.Process, container *specs.Spec, level *profiles.Level, in Inputs) (*specs.Process, []Change, error) {
	if p == nil {
		return nil, nil, errors.New("harden exec: process is empty")
	}
	if level == nil {
		return nil, nil, errors.New("harden exec: no level given")
	}
	if container == nil || container.Process == nil {
		return nil, nil, errors.New("harden exec: the container's spec has no process")
	}
	c := deepCopy(p)
	h := &hardening{level: level, in: in, spec: container, proc: c, container: container}
	h.run(processRules)
	if len(h.refusals) > 0 {
		return c, h.changes, &RefusedError{Level: level.Name, Violations: h.refusals}
	}
	return c, h.changes, nil
}

// list renders a list of names for a Change.
func list(items []string) string {
	if len(items) == 0 {
		return "[]"
	}
	return "[" + strings.Join(items, " ") + "]"
}

func itoa[T ~int | ~int32 | ~int64 | ~uint32 | ~uint64](v T) string {
	if v < 0 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatUint(uint64(v), 10)
}

func boolStr(b bool) string { return strconv.FormatBool(b) }
