package audit

import (
	"errors"
	"fmt"
	"time"
)

// Source delivers seccomp records as the kernel emits them.
type Source interface {
	// Read blocks until the next record, or until the source is closed or
	// its deadline passes.
	Read() (Record, error)
	// SetReadDeadline bounds the Read calls (zero: no bound).
	SetReadDeadline(time.Time) error
	// Close ends the reading; a blocked Read returns.
	Close() error
	// Name says where the records come from: "netlink" or "kmsg".
	Name() string
	// Lost counts the overruns: times the kernel dropped records because
	// this reader fell behind (each may be many records).
	Lost() uint64
}

// Open joins the audit multicast group, or, when that is impossible (an
// old kernel, no CAP_AUDIT_READ), reads the kernel log. The error says why
// neither worked.
func Open() (Source, error) {
	n, nerr := OpenNetlink()
	if nerr == nil {
		return n, nil
	}
	k, kerr := OpenKmsg()
	if kerr == nil {
		return k, nil
	}
	return nil, fmt.Errorf("read seccomp records: %w", errors.Join(nerr, kerr))
}
