package main

import (
	"strings"
	"testing"
)

// TestRunDenials: the restricted level denies unshare(CLONE_NEWUSER); with
// --denials the run lists it, through the real kernel's audit records and
// the fork tree (the unshare is a child of the shell and exits at once).
func TestRunDenials(t *testing.T) {
	runc := needRunc(t)
	layout := busyboxLayout(t)
	code, out, errOut := hardenctl(t, "run", "--runc", runc, "--denials", layout, "--", "sh", "-c", "unshare -U true; echo rc=$?")
	if code != 0 || !strings.Contains(out, "rc=1") {
		t.Fatalf("run = %d %q %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "unshare  errno EPERM  1      unshare") {
		t.Errorf("--denials did not list the unshare:\n%s", errOut)
	}
	// Trial mode: the same unshare runs, and is listed as what enforce
	// would deny.
	code, out, errOut = hardenctl(t, "run", "--runc", runc, "--denials", "--seccomp-mode", "audit", layout, "--", "sh", "-c", "unshare -U true; echo rc=$?")
	if code != 0 || !strings.Contains(out, "rc=0") {
		t.Fatalf("run --seccomp-mode audit = %d %q %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "unshare  log") || !strings.Contains(errOut, "trial mode: it ran; enforce would deny it") {
		t.Errorf("--denials in trial mode:\n%s", errOut)
	}
	code, _, errOut = hardenctl(t, "run", "--runc", runc, "--denials", layout, "--", "true")
	if code != 0 || !strings.Contains(errOut, "denials: none") {
		t.Errorf("run true = %d %s", code, errOut)
	}
}

func TestRunSeccompModeFlag(t *testing.T) {
	code, _, errOut := hardenctl(t, "run", "--seccomp-mode", "loud", "--policy", "/nonexistent", busyboxLayout(t), "--", "true")
	if code != 2 || !strings.Contains(errOut, `seccomp.mode: "loud" is not one of enforce, audit, silent`) {
		t.Errorf("run --seccomp-mode loud = %d %s", code, errOut)
	}
}
