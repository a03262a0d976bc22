package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Kmsg reads seccomp records from the kernel log. The kernel puts a record
// there only while no auditd is registered, and at most 10 every 5 seconds
// (printk_ratelimit); the rest are counted in its "callbacks suppressed"
// lines only. A fallback: use Netlink where it works.
type Kmsg struct {
	f    *os.File
	buf  []byte
	lost atomic.Uint64
}

// KmsgPath is the kernel log device.
var KmsgPath = "/dev/kmsg"

// OpenKmsg opens the kernel log at its end: only records from now on.
func OpenKmsg() (*Kmsg, error) {
	f, err := os.OpenFile(KmsgPath, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open the kernel log: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek the kernel log: %w", err)
	}
	return &Kmsg{f: f, buf: make([]byte, 8<<10)}, nil
}

// Name implements Source.
func (k *Kmsg) Name() string { return "kmsg" }

// Lost implements Source.
func (k *Kmsg) Lost() uint64 { return k.lost.Load() }

// Close implements Source.
func (k *Kmsg) Close() error { return k.f.Close() }

// SetReadDeadline implements Source.
func (k *Kmsg) SetReadDeadline(t time.Time) error { return k.f.SetReadDeadline(t) }

// Read implements Source: each read of /dev/kmsg is one log record,
// "PRIO,SEQ,USEC,FLAGS;text".
func (k *Kmsg) Read() (Record, error) {
	for {
		n, err := k.f.Read(k.buf)
		if errors.Is(err, syscall.EPIPE) {
			k.lost.Add(1) // overwritten before we read it
			continue
		}
		if err != nil {
			return Record{}, err
		}
		if r, ok := parseKmsg(string(k.buf[:n])); ok {
			return r, nil
		}
	}
}

func parseKmsg(line string) (Record, bool) {
	_, msg, ok := strings.Cut(line, ";")
	if !ok {
		return Record{}, false
	}
	msg, _, _ = strings.Cut(msg, "\n") // continuation lines follow
	const prefix = "audit: type=1326 "
	if !strings.HasPrefix(msg, prefix) {
		return Record{}, false
	}
	r, err := Parse(msg[len(prefix):])
	return r, err == nil
}
