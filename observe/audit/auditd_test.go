package audit

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeAuditd registers this process as the audit daemon, as auditd does
// (AUDIT_SET with AUDIT_STATUS_PID): the kernel then sends every record to
// it, and no longer to the kernel log.
type fakeAuditd struct{ fd int }

const (
	auditGet        = 1000
	auditSet        = 1001
	auditStatusPid  = 4
	sizeofStatusMin = 40 // struct audit_status up to backlog_wait_time
)

func registerAuditd(t *testing.T) *fakeAuditd {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAuditd{fd: fd}
	if err := a.setPid(os.Getpid()); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EEXIST) {
			t.Skip("skipping: an audit daemon is registered already (then records reach the multicast group anyway)")
		}
		t.Fatalf("register as the audit daemon: %v", err)
	}
	t.Cleanup(func() { a.setPid(0); unix.Close(fd) })
	return a
}

// setPid sends AUDIT_SET {mask: PID, pid} and waits for the kernel's ack.
func (a *fakeAuditd) setPid(pid int) error {
	status := make([]byte, sizeofStatusMin)
	binary.NativeEndian.PutUint32(status[0:], auditStatusPid)
	binary.NativeEndian.PutUint32(status[12:], uint32(pid))
	msg := make([]byte, unix.SizeofNlMsghdr+len(status))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], auditSet)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	copy(msg[unix.SizeofNlMsghdr:], status)
	if err := unix.Sendto(a.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	unix.SetsockoptTimeval(a.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	for {
		n, _, err := unix.Recvfrom(a.fd, buf, 0)
		if err != nil {
			return err
		}
		if binary.NativeEndian.Uint16(buf[4:]) == unix.NLMSG_ERROR && n >= unix.SizeofNlMsghdr+4 {
			if e := int32(binary.NativeEndian.Uint32(buf[unix.SizeofNlMsghdr:])); e != 0 {
				return unix.Errno(-e)
			}
			return nil
		}
	}
}

// records returns how many seccomp records of pid the daemon got (it
// stops at the first) within d.
func (a *fakeAuditd) records(pid int, d time.Duration) int {
	buf := make([]byte, 16<<10)
	unix.SetsockoptTimeval(a.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	deadline := time.Now().Add(d)
	got := 0
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(a.fd, buf, 0)
		if err != nil {
			continue
		}
		text, typ, ok := netlinkPayload(buf[:n])
		if ok && typ == TypeSeccomp && strings.Contains(text, " pid="+strconv.Itoa(pid)+" ") {
			got++
		}
		if got > 0 {
			return got
		}
	}
	return got
}

// TestNextToAuditd: with an audit daemon registered, the kernel sends the
// records to it and not to the kernel log; the multicast group still gets
// every one, so the observer works next to auditd.
func TestNextToAuditd(t *testing.T) {
	needRoot(t)
	daemon := registerAuditd(t)
	src, err := OpenNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	kmsg, err := OpenKmsg()
	if err != nil {
		t.Fatal(err)
	}
	defer kmsg.Close()
	pid := denyInChild(t, 2)
	if got := readFor(t, src, pid, 2, 20*time.Second); len(got) != 2 {
		t.Errorf("multicast reader got %d records next to an audit daemon, want 2", len(got))
	}
	if n := daemon.records(pid, 10*time.Second); n == 0 {
		t.Error("the audit daemon got no record: the kernel did not treat it as registered")
	}
	if got := readFor(t, kmsg, pid, 1, time.Second); len(got) != 0 {
		t.Errorf("the kernel log has %d records while an audit daemon is registered", len(got))
	}
}
