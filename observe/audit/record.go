package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TypeSeccomp is the audit record type of a seccomp decision (AUDIT_SECCOMP).
const TypeSeccomp = 1326

// Record is one AUDIT_SECCOMP record:
//
//	audit(1796283978.759:5): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=24671
//	comm="t" exe="/tmp/t" sig=0 arch=c000003e syscall=110 compat=0 ip=0x7fab1cb07829 code=0x50000
type Record struct {
	// Time and Serial are the record's audit(SECONDS.MILLIS:SERIAL) stamp.
	Time   time.Time
	Serial uint64
	// PID is the process (thread group) id in the host's pid namespace.
	PID int
	// UID and GID are the process's real ids in the host's user namespace.
	UID, GID uint32
	// Comm is the thread's name, Exe the path of its executable (as the
	// host sees it, so inside the container's root filesystem).
	Comm, Exe string
	// Signal is the signal a kill action sent, else 0.
	Signal int
	// Arch is the AUDIT_ARCH_* value of the syscall's ABI.
	Arch uint32
	// Syscall is the syscall number in that ABI.
	Syscall int
	// Compat is true for a 32-bit syscall of a 64-bit process.
	Compat bool
	// Code is the filter's action (SECCOMP_RET_ACTION_FULL). The kernel
	// logs the action only: the errno a SECCOMP_RET_ERRNO returned is not
	// in the record (the profile says it).
	Code uint32
}

// Seccomp return actions (SECCOMP_RET_ACTION_FULL values).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
)

// Action names the filter's action as /proc/sys/kernel/seccomp/actions_logged
// does: errno, kill_process, kill_thread, trap, user_notif, trace, log or
// allow.
func (r Record) Action() string {
	switch r.Code & 0xffff0000 {
	case retKillProcess:
		return "kill_process"
	case retKillThread:
		return "kill_thread"
	case retTrap:
		return "trap"
	case retErrno:
		return "errno"
	case retUserNotif:
		return "user_notif"
	case retTrace:
		return "trace"
	case retLog:
		return "log"
	case retAllow:
		return "allow"
	}
	return fmt.Sprintf("0x%x", r.Code&0xffff0000)
}

// Denied reports whether the syscall did not run: every action but log
// (trial mode) and allow.
func (r Record) Denied() bool {
	a := r.Code & 0xffff0000
	return a != retLog && a != retAllow
}

// Parse reads one record as the kernel formats it, with or without the
// kernel log's "audit: type=1326 " in front. Fields it does not know are
// skipped; the ones it needs (the stamp, pid, arch, syscall, code) must be
// there.
func Parse(text string) (Record, error) {
	var r Record
	text = strings.TrimSpace(text)
	if i := strings.Index(text, "audit("); i >= 0 {
		text = text[i:]
	}
	stamp, rest, ok := strings.Cut(text, "): ")
	if !ok || !strings.HasPrefix(stamp, "audit(") {
		return r, errors.New("no audit(...) stamp")
	}
	secs, serial, ok := strings.Cut(strings.TrimPrefix(stamp, "audit("), ":")
	if !ok {
		return r, fmt.Errorf("bad stamp %q", stamp)
	}
	var err error
	if r.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
		return r, fmt.Errorf("bad serial in %q", stamp)
	}
	whole, frac, _ := strings.Cut(secs, ".")
	s, err1 := strconv.ParseInt(whole, 10, 64)
	ms, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return r, fmt.Errorf("bad time in %q", stamp)
	}
	r.Time = time.Unix(s, ms*int64(time.Millisecond))

	seen := 0
	const needed = 1<<0 | 1<<1 | 1<<2 | 1<<3
	for rest != "" {
		var key, val string
		quoted := false
		key, rest, ok = strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.TrimSpace(key)
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return r, fmt.Errorf("unterminated %s", key)
			}
			val, rest, quoted = rest[1:end+1], strings.TrimPrefix(rest[end+2:], " "), true
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		switch key {
		case "pid":
			r.PID, err = strconv.Atoi(val)
			seen |= 1 << 0
		case "uid":
			r.UID, err = parseID(val)
		case "gid":
			r.GID, err = parseID(val)
		case "comm":
			r.Comm = untrusted(val, quoted)
		case "exe":
			r.Exe = untrusted(val, quoted)
		case "sig":
			r.Signal, err = strconv.Atoi(val)
		case "arch":
			var a uint64
			a, err = strconv.ParseUint(val, 16, 32)
			r.Arch = uint32(a)
			seen |= 1 << 1
		case "syscall":
			r.Syscall, err = strconv.Atoi(val)
			seen |= 1 << 2
		case "compat":
			r.Compat = val == "1"
		case "code":
			var c uint64
			c, err = strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 32)
			r.Code = uint32(c)
			seen |= 1 << 3
		}
		if err != nil {
			return r, fmt.Errorf("field %s=%q: %w", key, val, err)
		}
	}
	if seen != needed {
		return r, errors.New("not a seccomp record: pid, arch, syscall or code missing")
	}
	return r, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// untrusted decodes a value the kernel logged with audit_log_untrustedstring:
// as it is when it was quoted, hex-encoded when it had a space, a quote or
// a control character, "(null)" when there was none.
func untrusted(s string, quoted bool) string {
	if quoted {
		return s
	}
	if s == "(null)" {
		return ""
	}
	if len(s)%2 == 0 && strings.Trim(s, "0123456789ABCDEF") == "" {
		if b, err := hex.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return s
}
