package seccompbpf

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHangChild(t *testing.T) {
	data := os.Getenv("HANG_PROFILE")
	if data == "" {
		t.Skip()
	}
	var p specs.LinuxSeccomp
	json.Unmarshal([]byte(data), &p)
	CompileLikeRunc(&p)
}

func hangs(t *testing.T, p *specs.LinuxSeccomp) bool {
	data, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=TestHangChild")
	cmd.Env = append(os.Environ(), "HANG_PROFILE="+string(data))
	cmd.Run()
	return ctx.Err() != nil
}

func TestHangFinder(t *testing.T) {
	if os.Getenv("HANG_FIND") == "" {
		t.Skip()
	}
	rng := rand.New(rand.NewPCG(3, 5))
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpMaskedEqual, specs.OpNotEqual, specs.OpLessThan, specs.OpGreaterThan, specs.OpLessEqual, specs.OpGreaterEqual}
	found := 0
	for i := 0; i < 3000 && found < 3; i++ {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActTrap}
		for range 2 + rng.IntN(4) {
			r := specs.LinuxSyscall{Names: []string{"connect"}, Action: specs.ActAllow}
			for j := range 1 + rng.IntN(2) {
				r.Args = append(r.Args, specs.LinuxSeccompArg{Index: uint(j), Op: ops[rng.IntN(len(ops))], Value: uint64(rng.IntN(8)), ValueTwo: uint64(rng.IntN(8))})
			}
			p.Syscalls = append(p.Syscalls, r)
		}
		// quick in-process attempt guarded by the subprocess check
		if hangs(t, p) {
			found++
			// minimize: drop rules and args while it still hangs
			for changed := true; changed; {
				changed = false
				for k := range p.Syscalls {
					q := *p
					q.Syscalls = append(append([]specs.LinuxSyscall{}, p.Syscalls[:k]...), p.Syscalls[k+1:]...)
					if len(q.Syscalls) > 0 && hangs(t, &q) {
						p = &q
						changed = true
						break
					}
				}
				for k := range p.Syscalls {
					for a := range p.Syscalls[k].Args {
						if len(p.Syscalls[k].Args) < 2 {
							continue
						}
						q := *p
						q.Syscalls = append([]specs.LinuxSyscall{}, p.Syscalls...)
						q.Syscalls[k].Args = append(append([]specs.LinuxSeccompArg{}, p.Syscalls[k].Args[:a]...), p.Syscalls[k].Args[a+1:]...)
						if hangs(t, &q) {
							p = &q
							changed = true
							break
						}
					}
				}
			}
			data, _ := json.Marshal(p)
			fmt.Println("HANG:", string(data))
		}
	}
}
