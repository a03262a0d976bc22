package audit

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a process that loads a seccomp filter
// denying getppid with EPERM, logged, calls it N times and exits.
const helperEnv = "AUDIT_TEST_DENY_GETPPID"

func TestMain(m *testing.M) {
	if n := os.Getenv(helperEnv); n != "" {
		os.Exit(denyGetppid(n))
	}
	os.Exit(m.Run())
}

func denyGetppid(count string) int {
	runtime.LockOSThread()
	n, _ := strconv.Atoi(count)
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sc, _ := libseccomp.GetSyscallFromName("getppid")
	if err := f.AddRule(sc, libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := f.SetLogBit(true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := f.Load(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := 0; i < n; i++ {
		if _, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); e != unix.EPERM {
			fmt.Fprintln(os.Stderr, "getppid not denied:", e)
			return 1
		}
	}
	return 0
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root on CI")
		}
		t.Skip("skipping: needs root")
	}
}

// denyInChild runs the helper and returns its pid.
func denyInChild(t *testing.T, n int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v %s", err, out)
	}
	return cmd.Process.Pid
}

// readFor returns the records of pid that src delivers within d.
func readFor(t *testing.T, src Source, pid int, want int, d time.Duration) []Record {
	t.Helper()
	var got []Record
	deadline := time.Now().Add(d)
	src.SetReadDeadline(deadline)
	for len(got) < want {
		r, err := src.Read()
		if err != nil {
			break
		}
		if r.PID == pid {
			got = append(got, r)
		}
	}
	return got
}

func TestNetlinkReadsDenials(t *testing.T) {
	needRoot(t)
	src, err := OpenNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pid := denyInChild(t, 3)
	got := readFor(t, src, pid, 3, 20*time.Second)
	if len(got) != 3 {
		t.Fatalf("read %d records of pid %d, want 3", len(got), pid)
	}
	r := got[0]
	if r.SyscallName() != "getppid" || r.Action() != "errno" || r.Exe != exePath(t) {
		t.Errorf("record %+v: syscall %s action %s", r, r.SyscallName(), r.Action())
	}
	if got[1].Serial <= r.Serial {
		t.Errorf("serials %d, %d do not increase", r.Serial, got[1].Serial)
	}
	if src.Name() != "netlink" || src.Lost() != 0 {
		t.Errorf("name %s lost %d", src.Name(), src.Lost())
	}
	// Close ends a blocked Read.
	done := make(chan error, 1)
	src.SetReadDeadline(time.Time{})
	go func() { _, err := src.Read(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	src.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read after Close returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Read")
	}
}

func TestKmsgReadsDenials(t *testing.T) {
	needRoot(t)
	src, err := OpenKmsg()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// The kernel log has the record only while no auditd is registered and
	// the printk rate limit (10 every 5 s, shared by the whole kernel) lets
	// it through: try a few times.
	for try := 0; try < 4; try++ {
		pid := denyInChild(t, 1)
		if got := readFor(t, src, pid, 1, 6*time.Second); len(got) == 1 {
			if got[0].SyscallName() != "getppid" || src.Name() != "kmsg" {
				t.Errorf("record %+v from %s", got[0], src.Name())
			}
			return
		}
	}
	t.Skip("no record in the kernel log: an auditd is registered, or the rate limit is spent")
}

func exePath(t *testing.T) string {
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
