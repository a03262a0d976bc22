package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/profiles"
)

// seccompProbe tries, from inside a container, what the attack profiles
// are about: clone(2) into a new user namespace, and with it new network
// and mount namespaces where the child has every capability (not
// unshare(2), which the level denies by name), a vsock socket, a
// personality that makes data executable. It prints name=ok or
// name=<errno text>.
const seccompProbe = `package main

import (
	"fmt"
	"syscall"
)

func clone(name string, flags uintptr) {
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		fmt.Printf("%s=%s\n", name, errno.Error())
		return
	}
	if pid == 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(int(pid), &ws, 0, nil)
	fmt.Printf("%s=ok\n", name)
}

func main() {
	clone("clone-newuser", syscall.CLONE_NEWUSER)
	clone("clone-newuser-newnet", syscall.CLONE_NEWUSER|syscall.CLONE_NEWNET)
	clone("clone-newuser-newns", syscall.CLONE_NEWUSER|syscall.CLONE_NEWNS)
	clone("clone-plain", 0)
	if fd, err := syscall.Socket(40, syscall.SOCK_STREAM, 0); err != nil {
		fmt.Printf("vsock=%s\n", err.Error())
	} else {
		syscall.Close(fd)
		fmt.Println("vsock=ok")
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, 0x0400000, 0, 0); errno != 0 {
		fmt.Printf("read-implies-exec=%s\n", errno.Error())
	} else {
		syscall.RawSyscall(syscall.SYS_PERSONALITY, 0, 0, 0)
		fmt.Println("read-implies-exec=ok")
	}
}
`

// buildSeccompProbe compiles seccompProbe into a static binary.
func buildSeccompProbe(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(seccompProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module probe\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "probe", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the seccomp probe: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// eofReader closes done when r is read to its end.
type eofReader struct {
	r    io.Reader
	done chan struct{}
	once bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.once {
		e.once = true
		close(e.done)
	}
	return n, err
}

// levelProfile is what `hardenctl profiles export-seccomp restricted`
// prints, edited by f.
func levelProfile(t *testing.T, f func(p *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
	t.Helper()
	l, _ := profiles.Builtin("restricted")
	p, err := profiles.Seccomp(l, l.Capabilities.Allow)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(p)
	var c specs.LinuxSeccomp
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	f(&c)
	return &c
}

func replaceRule(p *specs.LinuxSeccomp, name string, r specs.LinuxSyscall) {
	var keep []specs.LinuxSyscall
	for _, x := range p.Syscalls {
		x.Names = slices.DeleteFunc(slices.Clone(x.Names), func(n string) bool { return n == name })
		if len(x.Names) > 0 {
			keep = append(keep, x)
		}
	}
	p.Syscalls = append(keep, r)
}

func withSeccomp(p *specs.LinuxSeccomp) oci.SpecOpts {
	return withSpec(func(s *specs.Spec) { s.Linux.Seccomp = p })
}

// TestSeccompAttackProfiles gives containers the level's own profile with
// one argument filter loosened but still conditional (a judgement by
// syscall name keeps them): clone's namespace mask set to 0, socket for
// every family but one, personality with a zero mask. It checks from
// inside, through the real containerd and runc, that the hardened runtime
// denies what the level denies, while plain runc with the same profile
// allows it (so the probe would see it).
func TestSeccompAttackProfiles(t *testing.T) {
	require(t)
	probe := buildSeccompProbe(t)
	args := []string{"sh", "-c", "cat > /tmp/probe && chmod 755 /tmp/probe && /tmp/probe"}
	for _, tc := range []struct {
		name   string
		edit   func(p *specs.LinuxSeccomp)
		allows []string // what the probe sees under runc with the profile
	}{
		{"clone-mask-0", func(p *specs.LinuxSeccomp) {
			for i := range p.Syscalls {
				if slices.Contains(p.Syscalls[i].Names, "clone") && len(p.Syscalls[i].Args) > 0 {
					p.Syscalls[i].Args[0].Value = 0 // the mask of namespace flags
				}
			}
		}, []string{"clone-newuser", "clone-newuser-newnet", "clone-newuser-newns"}},
		{"socket-any-family", func(p *specs.LinuxSeccomp) {
			replaceRule(p, "socket", specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 41, Op: specs.OpNotEqual}}})
		}, []string{"vsock"}},
		{"personality-any-persona", func(p *specs.LinuxSeccomp) {
			replaceRule(p, "personality", specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
		}, []string{"read-implies-exec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attack := levelProfile(t, tc.edit)
			plain, err := runWithStdin(t, runcRT, bytes.NewReader(probe), args, withSeccomp(attack))
			if err != nil {
				t.Fatalf("runc: %v", err)
			}
			for _, w := range tc.allows {
				if !strings.Contains(plain.Stdout, w+"=ok\n") {
					t.Fatalf("under runc the attack profile should allow %s; got\n%s%s", w, plain.Stdout, plain.Stderr)
				}
			}
			res, err := runWithStdin(t, hardenedRT, bytes.NewReader(probe), args, withSeccomp(attack))
			if err != nil {
				t.Fatalf("hardened: %v", err)
			}
			t.Logf("inside:\n%s%s", res.Stdout, res.Stderr)
			for _, w := range []string{"clone-newuser=function not implemented", "clone-newuser-newnet=function not implemented",
				"clone-newuser-newns=function not implemented", "clone-plain=ok", "vsock=function not implemented",
				"read-implies-exec=function not implemented"} {
				if !strings.Contains(res.Stdout, w+"\n") {
					t.Errorf("inside: want %s", w)
				}
			}
		})
	}
}

// critestChmodProfile is cri-tools v1.37.0's seccompBlockChmodProfile.
const critestChmodProfile = `{
     "defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [
         {
             "names": ["chmod", "fchmodat"],
             "action": "SCMP_ACT_ERRNO"
         }
     ]
}`

// TestSeccompWorkloadRestrictionKept gives a container critest's profile
// (allow everything but chmod): chmod must fail with "Operation not
// permitted", as critest expects, and the rest of the level must still
// apply (unshare is denied, the filter is on, unknown syscalls fail).
func TestSeccompWorkloadRestrictionKept(t *testing.T) {
	require(t)
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(critestChmodProfile), &p); err != nil {
		t.Fatal(err)
	}
	script := `touch /tmp/f
chmod 400 /tmp/f && echo chmod=ok
(unshare -U true) 2>&1 | head -1
grep Seccomp: /proc/self/status | tr -d '\t'
echo x > /tmp/g && cp /tmp/g /tmp/h && echo cp=ok
`
	res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", script}, withSeccomp(&p))
	if err != nil {
		t.Fatalf("refused, want it started: %v", err)
	}
	out := res.Stdout + res.Stderr
	t.Logf("inside:\n%s", out)
	for _, w := range []string{"chmod: /tmp/f: Operation not permitted", "unshare: unshare(0x10000000): Operation not permitted", "Seccomp:2", "cp=ok"} {
		if !strings.Contains(out, w) {
			t.Errorf("inside: want %q", w)
		}
	}
	if strings.Contains(out, "chmod=ok") {
		t.Error("chmod worked: the workload's own restriction was lost")
	}
}

// runWithStdin is runContainer (namespace ns, busybox) with stdin.
func runWithStdin(t *testing.T, runtime string, stdin io.Reader, args []string, opts ...oci.SpecOpts) (result, error) {
	t.Helper()
	return runSpec{namespace: ns, runtime: runtime, image: harness.Busybox, stdin: stdin}.run(t, args, opts...)
}
