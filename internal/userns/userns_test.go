package userns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testAllocator has a window of n ranges starting at 1<<20 and an etc
// directory with the given files.
func testAllocator(t *testing.T, n uint32, etc map[string]string) *Allocator {
	t.Helper()
	dir := t.TempDir()
	etcDir := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range etc {
		if err := os.WriteFile(filepath.Join(etcDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Allocator{Dir: filepath.Join(dir, "state"), First: 1 << 20, Length: n * Size, Etc: etcDir}
}

func owner(i int) Owner { return Owner{Namespace: "k8s.io", ID: fmt.Sprintf("pod-%d", i)} }

func mustReserve(t *testing.T, a *Allocator, o Owner) Entry {
	t.Helper()
	e, err := a.Reserve(o)
	if err != nil {
		t.Fatalf("Reserve(%s) = %v", o, err)
	}
	return e
}

func TestReserveIsPerOwnerAndPersists(t *testing.T) {
	a := testAllocator(t, 8, nil)
	e1 := mustReserve(t, a, owner(1))
	e2 := mustReserve(t, a, owner(2))
	if e1.HostID == e2.HostID || e1.Size != Size || e2.Size != Size {
		t.Fatalf("two owners got %+v and %+v", e1, e2)
	}
	if e1.HostID < a.First || e1.HostID%Size != 0 {
		t.Errorf("range %d is not a slot of the window", e1.HostID)
	}
	// The same owner (a pod's containers) gets the same range, also from
	// another process (another allocator on the same directory).
	again := &Allocator{Dir: a.Dir, First: a.First, Length: a.Length, Etc: a.Etc}
	if e := mustReserve(t, again, owner(1)); e.HostID != e1.HostID {
		t.Errorf("Reserve(pod-1) again = %d, want %d", e.HostID, e1.HostID)
	}
	entries, err := again.Entries()
	if err != nil || len(entries) != 2 {
		t.Errorf("Entries = %v, %v; want 2", entries, err)
	}
	info, err := os.Stat(filepath.Join(a.Dir, stateFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("state file %v %v, want mode 0600", info, err)
	}
}

func TestReleaseAndReuse(t *testing.T) {
	a := testAllocator(t, 3, nil)
	e1 := mustReserve(t, a, owner(1))
	mustReserve(t, a, owner(2))
	if err := a.Release(owner(1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(owner(1)); err != nil {
		t.Errorf("second Release = %v, want nil", err)
	}
	// Handed out in turn: the third slot before the released one.
	e3 := mustReserve(t, a, owner(3))
	if e3.HostID == e1.HostID {
		t.Errorf("a released range was reused while another was free")
	}
	e4 := mustReserve(t, a, owner(4))
	if e4.HostID != e1.HostID {
		t.Errorf("Reserve = %d, want the released %d (the only one left)", e4.HostID, e1.HostID)
	}
	if _, err := a.Reserve(owner(5)); err == nil || !strings.Contains(err.Error(), "no free range") || !strings.Contains(err.Error(), RangeEnv) {
		t.Errorf("Reserve in a full window = %v, want an error naming %s", err, RangeEnv)
	}
}

func TestReleaseWithoutStateWritesNothing(t *testing.T) {
	a := testAllocator(t, 2, nil)
	if err := a.Release(owner(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.Dir); !os.IsNotExist(err) {
		t.Errorf("Release created %s: %v", a.Dir, err)
	}
	if has, err := a.Has(owner(1)); has || err != nil {
		t.Errorf("Has = %v, %v without state", has, err)
	}
	if _, err := os.Stat(a.Dir); !os.IsNotExist(err) {
		t.Errorf("Has created %s: %v", a.Dir, err)
	}
	if _, err := a.Reserve(owner(1)); err != nil {
		t.Fatal(err)
	}
	if has, err := a.Has(owner(1)); !has || err != nil {
		t.Errorf("Has = %v, %v after Reserve", has, err)
	}
	if has, _ := a.Has(owner(2)); has {
		t.Error("Has = true for an owner without a range")
	}
}

// TestReclaimOnlyDeadOwners: a leaked range (its release missed) is reused
// only when none is free and containerd no longer has its owner; an owner
// containerd cannot be asked about counts as alive.
func TestReclaimOnlyDeadOwners(t *testing.T) {
	a := testAllocator(t, 2, nil)
	e1 := mustReserve(t, a, owner(1))
	mustReserve(t, a, owner(2))
	asked := map[Owner]int{}
	a.Alive = func(o Owner) (bool, error) {
		asked[o]++
		switch o {
		case owner(1):
			return false, nil
		default:
			return false, fmt.Errorf("containerd is not answering")
		}
	}
	e3 := mustReserve(t, a, owner(3))
	if e3.HostID != e1.HostID {
		t.Errorf("Reserve = %d, want dead pod-1's %d", e3.HostID, e1.HostID)
	}
	if asked[owner(1)] != 1 || asked[owner(2)] != 1 {
		t.Errorf("asked %v", asked)
	}
	if _, err := a.Reserve(owner(4)); err == nil {
		t.Error("pod-2, which containerd could not be asked about, lost its range")
	}
	a.Alive = func(Owner) (bool, error) { return true, nil }
	if _, err := a.Reserve(owner(4)); err == nil {
		t.Error("a live owner lost its range")
	}
	// An owner gone from containerd whose holder still runs (a container
	// whose pod record was removed under it) keeps its range.
	b := testAllocator(t, 1, nil)
	if _, err := b.Reserve(owner(1), "app", owner(1).ID); err != nil {
		t.Fatal(err)
	}
	b.Alive = func(o Owner) (bool, error) { return o.ID == "app", nil }
	if _, err := b.Reserve(owner(2)); err == nil {
		t.Error("a range was reclaimed while one of its holders is alive")
	}
	b.Alive = func(Owner) (bool, error) { return false, nil }
	if _, err := b.Reserve(owner(2)); err != nil {
		t.Errorf("a range with no owner nor holder alive was not reclaimed: %v", err)
	}
}

func TestAvoidsSubordinateRangesAndHostUsers(t *testing.T) {
	first := uint32(1 << 20)
	a := testAllocator(t, 5, map[string]string{
		// slot 0 overlaps a rootless user's subuid range; slot 1 the
		// kubelet's subgid range; slot 2 holds a host user; slot 3 a group.
		"subuid": "# comment\nalice:" + strconv.Itoa(int(first)+100) + ":10\n",
		"subgid": "kubelet:" + strconv.Itoa(int(first+Size+65535)) + ":65536\n",
		"passwd": "root:x:0:0:root:/root:/bin/sh\nbig:x:" + strconv.Itoa(int(first+2*Size+7)) + ":100::/:/bin/sh\n",
		"group":  "root:x:0:\nbig:x:" + strconv.Itoa(int(first+3*Size)) + ":\n",
	})
	e := mustReserve(t, a, owner(1))
	if e.HostID != first+4*Size {
		t.Errorf("Reserve = %d, want %d (slots 0-3 are the host's)", e.HostID, first+4*Size)
	}
	if _, err := a.Reserve(owner(2)); err == nil || !strings.Contains(err.Error(), "/etc/subuid") {
		t.Errorf("Reserve = %v, want no free range", err)
	}
}

func TestRecordOwnRange(t *testing.T) {
	a := testAllocator(t, 5, map[string]string{"passwd": "odd:x:" + strconv.Itoa(1<<20+3*int(Size)+5) + ":1::/:/bin/sh\n"})
	mine := mustReserve(t, a, owner(1))
	// A hostUsers: false pod's range over slot 1: recorded, and never
	// handed out.
	kube := Owner{Namespace: "k8s.io", ID: "userns-pod"}
	if err := a.Record(kube, a.First+Size, Size); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(kube, a.First+Size, Size); err != nil {
		t.Errorf("Record again = %v", err)
	}
	if e := mustReserve(t, a, owner(2)); e.HostID == a.First+Size {
		t.Error("Reserve handed out a recorded range")
	}
	// One over another owner's range, or a host user's, is an error.
	if err := a.Record(Owner{Namespace: "k8s.io", ID: "other"}, mine.HostID+10, 100); err == nil || !strings.Contains(err.Error(), owner(1).String()) {
		t.Errorf("Record over pod-1's range = %v", err)
	}
	if err := a.Record(Owner{Namespace: "k8s.io", ID: "other"}, a.First+3*Size, Size); err == nil || !strings.Contains(err.Error(), "host user") {
		t.Errorf("Record over a host user = %v", err)
	}
	// Reserve for the recording owner does not return its own range.
	if e := mustReserve(t, a, kube); e.HostID == a.First+Size {
		t.Error("Reserve returned the pod's own range as a reservation")
	}
	if err := a.Release(kube); err != nil {
		t.Fatal(err)
	}
	entries, _ := a.Entries()
	for _, e := range entries {
		if e.Owner == kube {
			t.Errorf("Release left %+v", e)
		}
	}
}

func TestConcurrentReserve(t *testing.T) {
	a := testAllocator(t, 200, nil)
	const n = 64
	var wg sync.WaitGroup
	got := make([]Entry, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each its own allocator, as each shim process has.
			b := &Allocator{Dir: a.Dir, First: a.First, Length: a.Length, Etc: a.Etc}
			got[i], errs[i] = b.Reserve(owner(i % 40)) // some owners twice: a pod's containers
		}()
	}
	wg.Wait()
	byOwner := map[Owner]uint32{}
	byRange := map[uint32]Owner{}
	for i, e := range got {
		if errs[i] != nil {
			t.Fatalf("Reserve = %v", errs[i])
		}
		if prev, ok := byOwner[e.Owner]; ok && prev != e.HostID {
			t.Errorf("%s got %d and %d", e.Owner, prev, e.HostID)
		}
		if prev, ok := byRange[e.HostID]; ok && prev != e.Owner {
			t.Errorf("range %d given to %s and %s", e.HostID, prev, e.Owner)
		}
		byOwner[e.Owner], byRange[e.HostID] = e.HostID, e.Owner
	}
	entries, err := a.Entries()
	if err != nil || len(entries) != 40 {
		t.Errorf("Entries = %d, %v; want 40", len(entries), err)
	}
}

// TestConcurrentProcesses: shims are processes; the lock is the file's.
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("USERNS_HELPER_DIR") != "" {
		t.Skip("helper")
	}
	a := testAllocator(t, 100, nil)
	var wg sync.WaitGroup
	const n = 12
	outs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReserve$")
			cmd.Env = append(os.Environ(), "USERNS_HELPER_DIR="+a.Dir, "USERNS_HELPER_ETC="+a.Etc, fmt.Sprintf("USERNS_HELPER_OWNER=proc-%d", i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helper %d: %v\n%s", i, err, out)
			}
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	entries, err := a.Entries()
	if err != nil || len(entries) != n {
		t.Fatalf("Entries = %v, %v; want %d", entries, err, n)
	}
	seen := map[uint32]bool{}
	for _, e := range entries {
		if seen[e.HostID] {
			t.Errorf("range %d reserved twice", e.HostID)
		}
		seen[e.HostID] = true
	}
}

func TestHelperReserve(t *testing.T) {
	dir := os.Getenv("USERNS_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestConcurrentProcesses")
	}
	a := &Allocator{Dir: dir, First: 1 << 20, Length: 100 * Size, Etc: os.Getenv("USERNS_HELPER_ETC")}
	for range 3 { // idempotent for one owner
		if _, err := a.Reserve(Owner{Namespace: "default", ID: os.Getenv("USERNS_HELPER_OWNER")}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorruptStateFailsClosed(t *testing.T) {
	a := testAllocator(t, 2, nil)
	mustReserve(t, a, owner(1))
	if err := os.WriteFile(filepath.Join(a.Dir, stateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(owner(2)); err == nil || !strings.Contains(err.Error(), stateFile) {
		t.Errorf("Reserve on a corrupt state = %v, want an error naming it", err)
	}
}

func TestParseRangeAndEnv(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		first  uint32
		length uint32
	}{
		{"1879048192:268304384", true, 1879048192, 268304384},
		{"65536:65536", true, 65536, 65536},
		{"0:65536", false, 0, 0},
		{"65536:100", false, 0, 0},
		{"4294901760:131072", false, 0, 0},
		{"x:y", false, 0, 0},
		{"65536", false, 0, 0},
	} {
		first, length, err := ParseRange(tc.in)
		if (err == nil) != tc.ok || first != tc.first || length != tc.length {
			t.Errorf("ParseRange(%q) = %d, %d, %v", tc.in, first, length, err)
		}
	}
	t.Setenv(DirEnv, "/tmp/x")
	t.Setenv(RangeEnv, "131072:655360")
	a, err := FromEnv()
	if err != nil || a.Dir != "/tmp/x" || a.First != 131072 || a.slots() != 10 {
		t.Errorf("FromEnv = %+v, %v", a, err)
	}
	t.Setenv(DirEnv, "relative")
	if _, err := FromEnv(); err == nil {
		t.Error("FromEnv took a relative directory")
	}
	t.Setenv(DirEnv, "")
	t.Setenv(RangeEnv, "")
	if a, err := FromEnv(); err != nil || a.Dir != DefaultDir || a.First != DefaultFirst || a.slots() != 4094 {
		t.Errorf("FromEnv defaults = %+v, %v (want 4094 ranges)", a, err)
	}
}

// TestHoldersShareARange: a range held by several containers (a pod's
// sandbox and its containers, each maybe in another shim process) goes
// only with its last hold; dropping a hold twice or one that never was
// changes nothing; an entry without holders goes with its owner.
func TestHoldersShareARange(t *testing.T) {
	a := testAllocator(t, 2, nil)
	pod := owner(1)
	e1, err := a.Reserve(pod, "c1", pod.ID)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a.Reserve(pod, "c2", pod.ID)
	if err != nil || e2.HostID != e1.HostID || !slices.Equal(e2.Holders, []string{"c1", pod.ID, "c2"}) {
		t.Fatalf("second hold = %+v %v, want the same range held by c1, the sandbox and c2", e2, err)
	}
	for _, h := range []string{pod.ID, "c1", "c1", "nobody"} {
		if err := a.Drop(pod, h); err != nil {
			t.Fatal(err)
		}
		if has, _ := a.Has(pod); !has {
			t.Fatalf("after %s let go, with c2 still holding: released", h)
		}
		if _, err := a.Reserve(owner(2)); err != nil {
			t.Fatal(err)
		}
		if en, _ := a.Entries(); en[len(en)-1].HostID == e1.HostID {
			t.Fatalf("after %s let go: another owner got the range c2 holds", h)
		}
		a.Release(owner(2))
	}
	if err := a.Drop(pod, "c2"); err != nil {
		t.Fatal(err)
	}
	if has, _ := a.Has(pod); has {
		t.Error("after the last hold: still reserved")
	}
	// An entry from before holders (whose shim may still run containers in
	// it): a new holder is recorded (reclaim asks about it) but the entry
	// is kept: no drop releases it; only reclaim takes it.
	if _, err := a.Reserve(owner(3)); err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Reserve(owner(3), "new-member"); !e.Kept || !slices.Equal(e.Holders, []string{"new-member"}) {
		t.Errorf("a reserve on an entry without holders: %+v, want it kept, held by new-member", e)
	}
	for _, h := range []string{"a-member", owner(3).ID, "new-member"} {
		a.Drop(owner(3), h)
		if has, _ := a.Has(owner(3)); !has {
			t.Errorf("an entry of before holders went with %s's drop", h)
		}
	}
	a.Release(owner(3))
	// A recorded own range holds the same way.
	if err := a.Record(owner(4), 1<<29, Size, "m1", owner(4).ID); err != nil {
		t.Fatal(err)
	}
	a.Drop(owner(4), owner(4).ID)
	if has, _ := a.Has(owner(4)); !has {
		t.Error("a recorded range went while m1 holds it")
	}
	a.Drop(owner(4), "m1")
	if has, _ := a.Has(owner(4)); has {
		t.Error("a recorded range stayed after its last hold")
	}
}
