// Package seccompbpf checks OCI seccomp profiles with libseccomp, the
// library runc compiles them with: every syscall name must exist and the
// profile must compile to BPF. It is a separate package because it needs cgo;
// profiles stays pure.
package seccompbpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Validate reports every unknown syscall name and architecture at once, and
// whether the profile compiles to a BPF program. Names this machine's
// libseccomp does not know yet but the RuntimeDefault profile lists (newer
// syscalls such as mseal) are skipped, as runc skips them; they come back
// as Newer. Any other unknown name is an error: a typo allows nothing.
func Validate(p *specs.LinuxSeccomp) (newer []string, err error) {
	known := runtimeDefaultNames()
	var unknown []string
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if _, err := libseccomp.GetSyscallFromName(n); err != nil {
				if known[n] {
					newer = append(newer, n)
				} else {
					unknown = append(unknown, n)
				}
			}
		}
	}
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("unknown syscalls: %s", strings.Join(unknown, ", ")))
	}
	for _, a := range p.Architectures {
		if _, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))); err != nil {
			errs = append(errs, fmt.Errorf("unknown architecture %s", a))
		}
	}
	if len(errs) > 0 {
		return newer, errors.Join(errs...)
	}
	n, err := Compile(p)
	if err != nil {
		return newer, err
	}
	if n == 0 {
		return newer, errors.New("the profile compiled to an empty program")
	}
	return newer, nil
}

func runtimeDefaultNames() map[string]bool {
	names := map[string]bool{}
	for _, r := range mobyseccomp.DefaultProfile().Syscalls {
		for _, n := range r.Names {
			names[n] = true
		}
	}
	return names
}

// Compile builds the profile with libseccomp, as runc does, and returns the
// size of the BPF program in bytes.
func Compile(p *specs.LinuxSeccomp) (int, error) {
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return 0, fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return 0, err
	}
	defer f.Release()
	for _, a := range p.Architectures {
		arch, _ := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
		if err := f.AddArch(arch); err != nil {
			return 0, fmt.Errorf("architecture %s: %w", a, err)
		}
	}
	for i, r := range p.Syscalls {
		act, err := action(r.Action, r.ErrnoRet)
		if err != nil {
			return 0, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range r.Args {
			c, err := libseccomp.MakeCondition(a.Index, operator(a.Op), a.Value, a.ValueTwo)
			if err != nil {
				return 0, fmt.Errorf("syscalls[%d] args: %w", i, err)
			}
			conds = append(conds, c)
		}
		for _, n := range r.Names {
			sc, err := libseccomp.GetSyscallFromName(n)
			if err != nil {
				continue // reported by Validate
			}
			if act == def {
				continue // libseccomp refuses rules equal to the default
			}
			if len(conds) == 0 {
				err = f.AddRule(sc, act)
			} else {
				err = f.AddRuleConditional(sc, act, conds)
			}
			if err != nil {
				return 0, fmt.Errorf("syscalls[%d] %s: %w", i, n, err)
			}
		}
	}
	tmp, err := os.CreateTemp("", "seccomp-bpf-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := f.ExportBPF(tmp); err != nil {
		return 0, fmt.Errorf("export BPF: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return 0, err
	}
	return int(fi.Size()), nil
}

func action(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		ret := int16(1) // EPERM, runc's default
		if errno != nil {
			ret = int16(*errno)
		}
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActTrace:
		return libseccomp.ActTrace, nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

func operator(op specs.LinuxSeccompOperator) libseccomp.ScmpCompareOp {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual
	case specs.OpLessThan:
		return libseccomp.CompareLess
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual
	case specs.OpEqualTo:
		return libseccomp.CompareEqual
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual
	}
	return libseccomp.CompareInvalid
}
