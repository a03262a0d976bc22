package seccompmodel

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Names that trade a character with their neighbour are other profiles,
// and get other cache keys.
func TestHashProfileNeighbours(t *testing.T) {
	a := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read\x00", ""}, Action: specs.ActAllow}}}
	b := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "\x00"}, Action: specs.ActAllow}}}
	if hashProfile(a) == hashProfile(b) {
		t.Fatal("profiles whose names trade a byte share a cache key")
	}
}
