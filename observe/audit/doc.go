// Package audit reads the kernel's seccomp audit records: one record of
// type AUDIT_SECCOMP (1326) for every syscall a seccomp filter denied with
// SECCOMP_FILTER_FLAG_LOG, or only logged (SCMP_ACT_LOG), or killed for.
//
// Records come from the audit netlink multicast group (AUDIT_NLGRP_READLOG,
// Linux >= 3.16, CAP_AUDIT_READ, the host's network namespace), which any
// number of readers can join next to a running auditd and which receives
// every record whatever the audit configuration; or, where that is not
// possible, from the kernel log (/dev/kmsg), which has them only while no
// auditd runs and only 10 every 5 seconds (printk's rate limit).
//
// Parse is pure; the readers are the side effects.
package audit
