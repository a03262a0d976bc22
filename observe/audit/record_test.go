package audit

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

const sample = `audit(1796283978.759:5): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=24671 comm="t" exe="/tmp/obs/t" sig=0 arch=c000003e syscall=110 compat=0 ip=0x7fab1cb07829 code=0x50000`

func TestParse(t *testing.T) {
	r, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Time: time.Unix(1796283978, 759*int64(time.Millisecond)), Serial: 5, PID: 24671, Comm: "t", Exe: "/tmp/obs/t",
		Arch: 0xc000003e, Syscall: 110, Code: 0x50000}
	if r != want {
		t.Errorf("Parse = %+v, want %+v", r, want)
	}
	if r.Action() != "errno" || !r.Denied() {
		t.Errorf("action %s denied %v", r.Action(), r.Denied())
	}
	if r.SyscallName() != "getppid" || r.ArchName() != "SCMP_ARCH_X86_64" {
		t.Errorf("syscall %s arch %s", r.SyscallName(), r.ArchName())
	}
	// The kernel log's form, hex-encoded untrusted strings.
	k, err := Parse(`audit: type=1326 audit(1.002:7): auid=1 uid=65534 gid=65534 ses=2 pid=9 comm=6D7920617070 exe=(null) sig=31 arch=c000003e syscall=1073742337 compat=0 ip=0x0 code=0x7ffc0000`)
	if err != nil {
		t.Fatal(err)
	}
	if k.Comm != "my app" || k.Exe != "" || k.UID != 65534 || k.Signal != 31 || k.Action() != "log" || k.Denied() {
		t.Errorf("kmsg form: %+v action %s", k, k.Action())
	}
	if k.ArchName() != "SCMP_ARCH_X32" || strings.HasPrefix(k.SyscallName(), "syscall_") {
		t.Errorf("x32: arch %s syscall %s", k.ArchName(), k.SyscallName())
	}
	// Quoted values are taken as they are, even when they look like hex.
	q, _ := Parse(`audit(1.0:1): pid=1 comm="CAFE" exe="/x" arch=c000003e syscall=0 code=0x0`)
	if q.Comm != "CAFE" || q.Action() != "kill_thread" {
		t.Errorf("quoted hex-looking comm: %+v %s", q, q.Action())
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"type=1300 msg=something",
		"audit(1.0): pid=1 arch=c000003e syscall=1 code=0x0",
		"audit(x.0:1): pid=1 arch=c000003e syscall=1 code=0x0",
		"audit(1.0:1): arch=c000003e syscall=1 code=0x0",
		"audit(1.0:1): pid=x arch=c000003e syscall=1 code=0x0",
		`audit(1.0:1): pid=1 comm="unterminated arch=c000003e syscall=1 code=0x0`,
		"audit(1.0:1): pid=1 arch=zz syscall=1 code=0x0",
	} {
		if r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, r)
		}
	}
}

func TestActions(t *testing.T) {
	for code, want := range map[uint32]string{
		0x80000000: "kill_process", 0x00000000: "kill_thread", 0x00030000: "trap", 0x00050000: "errno",
		0x7fc00000: "user_notif", 0x7ff00000: "trace", 0x7ffc0000: "log", 0x7fff0000: "allow", 0x12340000: "0x12340000",
	} {
		if got := (Record{Code: code}).Action(); got != want {
			t.Errorf("Action(0x%x) = %s, want %s", code, got, want)
		}
	}
	if n := (Record{Arch: 0x1234, Syscall: 5}).SyscallName(); n != "syscall_5" {
		t.Errorf("SyscallName of an unknown arch = %s", n)
	}
}

func TestNetlinkPayload(t *testing.T) {
	msg := []byte("audit(1.0:1): pid=1 arch=c000003e syscall=1 code=0x0")
	b := make([]byte, 16+len(msg)+1)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)+3)) // longer than what was read: trusted up to the read
	binary.NativeEndian.PutUint16(b[4:], TypeSeccomp)
	copy(b[16:], msg)
	text, typ, ok := netlinkPayload(b)
	if !ok || typ != TypeSeccomp || text != string(msg) {
		t.Errorf("netlinkPayload = %q %d %v", text, typ, ok)
	}
	if _, _, ok := netlinkPayload(b[:8]); ok {
		t.Error("short datagram accepted")
	}
}

func TestParseKmsg(t *testing.T) {
	r, ok := parseKmsg("5,1234,5678,-;audit: type=1326 " + sample + "\n SUBSYSTEM=x\n")
	if !ok || r.PID != 24671 {
		t.Errorf("parseKmsg = %+v %v", r, ok)
	}
	for _, line := range []string{"6,1,2,-;audit: type=1300 audit(1.0:1): x", "no separator", "6,1,2,-;kauditd_printk_skb: 5 callbacks suppressed"} {
		if _, ok := parseKmsg(line); ok {
			t.Errorf("parseKmsg(%q) accepted", line)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add(`audit(1.0:1): pid=1 comm=41 exe="x y" arch=c000003e syscall=1 code=0x0`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err == nil {
			_ = r.SyscallName() + r.Action() + r.ArchName()
		}
	})
}
