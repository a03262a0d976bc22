package audit

import (
	"strconv"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// AUDIT_ARCH_* values of the ABIs seccomp profiles name, with libseccomp's.
var auditArches = map[uint32]libseccomp.ScmpArch{
	0xc000003e: libseccomp.ArchAMD64,
	0x40000003: libseccomp.ArchX86,
	0xc00000b7: libseccomp.ArchARM64,
	0x40000028: libseccomp.ArchARM,
	0xc0000015: libseccomp.ArchPPC64LE,
	0x80000016: libseccomp.ArchS390X,
	0xc00000f3: libseccomp.ArchRISCV64,
}

// x32SyscallBit marks the x32 ABI's syscalls, which audit logs with the
// x86_64 arch.
const x32SyscallBit = 0x40000000

type nameKey struct {
	arch uint32
	nr   int
}

// names caches libseccomp's answers: a loop of denials asks the same one.
var names sync.Map // nameKey -> string

// SyscallName is the syscall's name as seccomp profiles write it (from
// libseccomp's tables), or "syscall_N" for a number it does not know.
func (r Record) SyscallName() string {
	k := nameKey{r.Arch, r.Syscall}
	if n, ok := names.Load(k); ok {
		return n.(string)
	}
	n := r.lookupName()
	names.Store(k, n)
	return n
}

func (r Record) lookupName() string {
	nr := r.Syscall
	arch, ok := auditArches[r.Arch]
	if ok && arch == libseccomp.ArchAMD64 && nr&x32SyscallBit != 0 {
		arch, nr = libseccomp.ArchX32, nr&^x32SyscallBit
	}
	if ok {
		if name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil {
			return name
		}
	}
	return "syscall_" + strconv.Itoa(r.Syscall)
}

// ArchName is the ABI as seccomp profiles name it (SCMP_ARCH_X86_64), or
// the hex AUDIT_ARCH value.
func (r Record) ArchName() string {
	arch, ok := auditArches[r.Arch]
	if ok && arch == libseccomp.ArchAMD64 && r.Syscall&x32SyscallBit != 0 {
		arch = libseccomp.ArchX32
	}
	if !ok {
		return "0x" + strconv.FormatUint(uint64(r.Arch), 16)
	}
	switch arch {
	case libseccomp.ArchAMD64:
		return "SCMP_ARCH_X86_64"
	case libseccomp.ArchX32:
		return "SCMP_ARCH_X32"
	case libseccomp.ArchX86:
		return "SCMP_ARCH_X86"
	case libseccomp.ArchARM64:
		return "SCMP_ARCH_AARCH64"
	case libseccomp.ArchARM:
		return "SCMP_ARCH_ARM"
	case libseccomp.ArchPPC64LE:
		return "SCMP_ARCH_PPC64LE"
	case libseccomp.ArchS390X:
		return "SCMP_ARCH_S390X"
	case libseccomp.ArchRISCV64:
		return "SCMP_ARCH_RISCV64"
	}
	return arch.String()
}
