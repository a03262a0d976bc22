package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nlgrpReadlog is AUDIT_NLGRP_READLOG, the multicast group that gets a
// copy of every audit record (Linux >= 3.16).
const nlgrpReadlog = 1

// rcvbuf is the socket buffer asked for: about 20,000 records, a burst
// several times what the kernel emits in a second of a tight denial loop
// here, so one slow scheduling of the reader loses nothing.
const rcvbuf = 8 << 20

// Netlink reads records from the audit netlink multicast group.
type Netlink struct {
	f    *os.File
	rc   syscall.RawConn
	buf  []byte
	lost atomic.Uint64
}

// OpenNetlink joins AUDIT_NLGRP_READLOG. It needs CAP_AUDIT_READ and the
// host's network namespace (the kernel multicasts there only).
func OpenNetlink() (*Netlink, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("audit netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (nlgrpReadlog - 1)}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("join the audit multicast group: %w (needs CAP_AUDIT_READ)", err)
		}
		return nil, fmt.Errorf("join the audit multicast group: %w (needs Linux >= 3.16)", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	f := os.NewFile(uintptr(fd), "audit-netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Netlink{f: f, rc: rc, buf: make([]byte, 16<<10)}, nil
}

// Name implements Source.
func (n *Netlink) Name() string { return "netlink" }

// Lost implements Source.
func (n *Netlink) Lost() uint64 { return n.lost.Load() }

// Close implements Source.
func (n *Netlink) Close() error { return n.f.Close() }

// SetReadDeadline implements Source.
func (n *Netlink) SetReadDeadline(t time.Time) error { return n.f.SetReadDeadline(t) }

// Read implements Source. Each datagram is one record; records of other
// types (an auditd's own, the syscall records of audit rules) are skipped.
func (n *Netlink) Read() (Record, error) {
	for {
		var nr int
		var rerr error
		err := n.rc.Read(func(fd uintptr) bool {
			nr, _, rerr = unix.Recvfrom(int(fd), n.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return Record{}, err
		}
		if errors.Is(rerr, unix.ENOBUFS) {
			n.lost.Add(1)
			continue
		}
		if rerr != nil {
			return Record{}, fmt.Errorf("read audit netlink: %w", rerr)
		}
		text, typ, ok := netlinkPayload(n.buf[:nr])
		if !ok || typ != TypeSeccomp {
			continue
		}
		r, err := Parse(text)
		if err != nil {
			continue // not ours to judge: the kernel wrote it
		}
		return r, nil
	}
}

// netlinkPayload returns the text and type of one audit datagram. The
// kernel's multicast copies carry the record's length unpadded, so the
// length is trusted only up to what was read.
func netlinkPayload(b []byte) (string, uint16, bool) {
	if len(b) < unix.SizeofNlMsghdr {
		return "", 0, false
	}
	length := int(binary.NativeEndian.Uint32(b[0:4]))
	typ := binary.NativeEndian.Uint16(b[4:6])
	if length > len(b) || length < unix.SizeofNlMsghdr {
		length = len(b)
	}
	data := b[unix.SizeofNlMsghdr:length]
	for len(data) > 0 && data[len(data)-1] == 0 {
		data = data[:len(data)-1]
	}
	return string(data), typ, true
}
