package seccompbpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Insn is one classic BPF instruction.
type Insn struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Program is a seccomp filter compiled the way runc v1.5.2 compiles a
// profile (libcontainer/seccomp.InitSeccomp and matchCall), before runc's
// ENOSYS patch: the default action, the listed architectures (and the
// native one), one libseccomp rule per name, conditions on one argument
// index repeated turning into separate rules, rules equal to the default
// and names libseccomp does not know skipped.
type Program []Insn

// CompileLikeRunc builds the filter of a profile as runc would. It fails
// where runc would fail to load it.
func CompileLikeRunc(p *specs.LinuxSeccomp) (Program, error) {
	def, err := runcAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	for _, a := range p.Architectures {
		arch, err := libseccomp.GetArchFromString(runcArch(a))
		if err != nil {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
	}
	n := 0
	for _, r := range p.Syscalls {
		n += len(r.Names)
	}
	if n > 32 {
		_ = f.SetOptimize(2)
	}
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, err
	}
	for i, r := range p.Syscalls {
		act, err := runcAction(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		for _, name := range r.Names {
			if act == def {
				continue
			}
			sc, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue
			}
			if len(r.Args) == 0 {
				if err := f.AddRule(sc, act); err != nil {
					return nil, fmt.Errorf("syscalls[%d] %s: %w", i, name, err)
				}
				continue
			}
			var counts [6]int
			split := false
			var conds []libseccomp.ScmpCondition
			for _, a := range r.Args {
				c, err := libseccomp.MakeCondition(a.Index, operator(a.Op), a.Value, a.ValueTwo)
				if err != nil {
					return nil, fmt.Errorf("syscalls[%d] args: %w", i, err)
				}
				counts[a.Index]++
				split = split || counts[a.Index] > 1
				conds = append(conds, c)
			}
			if split {
				for _, c := range conds {
					if err := f.AddRuleConditional(sc, act, []libseccomp.ScmpCondition{c}); err != nil {
						return nil, fmt.Errorf("syscalls[%d] %s: %w", i, name, err)
					}
				}
			} else if err := f.AddRuleConditional(sc, act, conds); err != nil {
				return nil, fmt.Errorf("syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	return export(f)
}

// runcAction is runc's getAction: errno and trace return errnoRet, or
// EPERM when it is unset.
func runcAction(a specs.LinuxSeccompAction, ret *uint) (libseccomp.ScmpAction, error) {
	code := int16(1)
	if ret != nil {
		code = int16(*ret)
	}
	switch a {
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(code), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(code), nil
	}
	return action(a, nil)
}

func runcArch(a specs.Arch) string {
	switch a {
	case specs.ArchX86_64:
		return "amd64"
	case specs.ArchAARCH64:
		return "arm64"
	case specs.ArchLOONGARCH64:
		return "loong64"
	}
	return strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
}

func export(f *libseccomp.ScmpFilter) (Program, error) {
	tmp, err := os.CreateTemp("", "seccomp-bpf-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := f.ExportBPF(tmp); err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(tmp)
	if err != nil {
		return nil, err
	}
	prog := make(Program, len(data)/8)
	if err := binary.Read(bytes.NewReader(data), binary.NativeEndian, prog); err != nil {
		return nil, err
	}
	return prog, nil
}

// Data is struct seccomp_data.
type Data struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// Run executes the filter on one call and returns the seccomp return value
// (SECCOMP_RET_*), as the kernel's classic BPF interpreter would.
func (p Program) Run(d Data) (uint32, error) {
	var buf [64]byte
	binary.NativeEndian.PutUint32(buf[0:], uint32(d.Nr))
	binary.NativeEndian.PutUint32(buf[4:], d.Arch)
	binary.NativeEndian.PutUint64(buf[8:], d.IP)
	for i, a := range d.Args {
		binary.NativeEndian.PutUint64(buf[16+8*i:], a)
	}
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.Code {
		case 0x20: // ld [k]
			if in.K+4 > 64 {
				return 0, fmt.Errorf("pc %d: load out of seccomp_data", pc)
			}
			a = binary.NativeEndian.Uint32(buf[in.K:])
		case 0x00: // ld #k
			a = in.K
		case 0x01: // ldx #k
			x = in.K
		case 0x60: // ld M[k]
			a = mem[in.K&15]
		case 0x61: // ldx M[k]
			x = mem[in.K&15]
		case 0x02: // st M[k]
			mem[in.K&15] = a
		case 0x03: // stx M[k]
			mem[in.K&15] = x
		case 0x07: // tax
			x = a
		case 0x87: // txa
			a = x
		case 0x54: // and #k
			a &= in.K
		case 0x44: // or #k
			a |= in.K
		case 0x04: // add #k
			a += in.K
		case 0x14: // sub #k
			a -= in.K
		case 0x05: // ja k
			pc += int(in.K)
		case 0x15, 0x25, 0x35, 0x45, 0x1d, 0x2d, 0x3d, 0x4d:
			v := in.K
			if in.Code&0x08 != 0 {
				v = x
			}
			var ok bool
			switch in.Code &^ 0x08 {
			case 0x15:
				ok = a == v
			case 0x25:
				ok = a > v
			case 0x35:
				ok = a >= v
			case 0x45:
				ok = a&v != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case 0x06: // ret #k
			return in.K, nil
		case 0x16: // ret a
			return a, nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x not handled", pc, in.Code)
		}
	}
	return 0, errors.New("the program ran off its end")
}
