// Package userns reserves ranges of host ids for the user namespaces the
// shim gives root containers (level key user.namespace): one range of
// 65536 uids (and the same gids) per pod, or per container outside a pod,
// that no other pod and no host user has.
//
// The reservations live in one file on the node, ranges.json in the state
// directory (default /var/lib/hardened/userns, $HARDENED_USERNS_DIR), read
// and replaced under an exclusive lock (flock on the directory's lock
// file) and written atomically, so that they survive shim, containerd and
// node restarts and many shims starting at once share them safely. An
// entry names its holders, the containers that use the range (a pod's
// containers in it and the pod's sandbox, or the container outside a pod):
// each gives its hold back when its task is deleted, in whichever shim
// process that happens, and the range goes with the last hold. One whose
// release was missed (a shim killed, a node that went down) is reclaimed
// only when no range is free and containerd's records have neither its
// owner nor any of its holders.
//
// Ranges are taken from a window of host ids (default 1879048192 to
// 2147352575, 4094 ranges: what systemd's "Users, Groups, UIDs and GIDs"
// leaves unused between its container ranges and the foreign range;
// $HARDENED_USERNS_RANGE=<first>:<length>), never overlapping an entry of
// /etc/subuid or /etc/subgid nor holding an id of /etc/passwd or
// /etc/group, and never one recorded for a pod that brought its own user
// namespace (Kubernetes hostUsers: false, on this runtime).
package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

// Environment the allocator reads.
const (
	// DirEnv is the state directory.
	DirEnv = "HARDENED_USERNS_DIR"
	// RangeEnv is the window of host ids, <first>:<length>.
	RangeEnv = "HARDENED_USERNS_RANGE"
)

// Defaults.
const (
	DefaultDir = "/var/lib/hardened/userns"
	// DefaultFirst and DefaultLength are the window: 0x70000000 to
	// 0x7ffdffff, below systemd's foreign range (0x7ffe0000) and 2^31.
	DefaultFirst  uint32 = 0x70000000
	DefaultLength uint32 = 0x7ffe0000 - 0x70000000
	// Size is the ids of one range: a user namespace's 0 to 65535, all a
	// container image's files can name.
	Size uint32 = 65536
)

// stateFile and lockFile are in the state directory.
const (
	stateFile    = "ranges.json"
	lockFile     = "lock"
	stateVersion = 1
)

// Owner is who a range is reserved for: a pod (its sandbox's id) or a
// container outside a pod, in a containerd namespace.
type Owner struct {
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
}

func (o Owner) String() string { return o.Namespace + "/" + o.ID }

// Entry is one reserved range.
type Entry struct {
	Owner  Owner  `json:"owner"`
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
	// Own marks a range the workload brought (a hostUsers: false pod's,
	// from the kubelet): recorded so that none is handed out over it.
	Own bool `json:"own,omitempty"`
	// Since is when it was reserved.
	Since time.Time `json:"since"`
	// Holders are the ids of the containers (in the owner's namespace)
	// that hold the range: it is released when the last lets go (Drop).
	// An entry without holders (written before there were any, by a shim
	// that may still run its containers) is only reclaimed.
	Holders []string `json:"holders,omitempty"`
	// Kept marks such an entry once holders are added to it: it is still
	// only reclaimed (which asks about the holders too), never dropped.
	Kept bool `json:"kept,omitempty"`
}

// hold adds holders to e and reports whether it changed e. An entry of
// before holders (none yet, not kept) is marked kept.
func (e *Entry) hold(holders []string) bool {
	changed := false
	if len(e.Holders) == 0 && !e.Kept && !e.Since.IsZero() && len(holders) > 0 {
		e.Kept, changed = true, true
	}
	for _, h := range holders {
		if h != "" && !slices.Contains(e.Holders, h) {
			e.Holders = append(e.Holders, h)
			changed = true
		}
	}
	return changed
}

func (e Entry) end() uint64 { return uint64(e.HostID) + uint64(e.Size) }

func (e Entry) overlaps(first uint32, size uint32) bool {
	return uint64(first) < e.end() && uint64(e.HostID) < uint64(first)+uint64(size)
}

// state is ranges.json.
type state struct {
	Version int `json:"version"`
	// Next is the slot the next search starts at: ranges are handed out
	// in turn, so a released one is reused as late as possible.
	Next    uint32  `json:"next"`
	Entries []Entry `json:"entries"`
}

// Allocator reserves ranges in a window of host ids.
type Allocator struct {
	// Dir is the state directory.
	Dir string
	// First and Length are the window: host ids [First, First+Length).
	First, Length uint32
	// Etc is where passwd, group, subuid and subgid are read ("/etc").
	Etc string
	// Alive reports whether an owner still exists (containerd's records);
	// it is asked, when no range is free, about each reserved owner, and
	// only a dead one's range is reclaimed. Nil: nothing is reclaimed. An
	// error counts as alive.
	Alive func(Owner) (bool, error)
	// now is time.Now, replaceable in tests.
	now func() time.Time
}

// FromEnv returns the node's allocator: the state directory and window
// from the environment, or the defaults.
func FromEnv() (*Allocator, error) {
	a := &Allocator{Dir: DefaultDir, First: DefaultFirst, Length: DefaultLength, Etc: "/etc"}
	if d := os.Getenv(DirEnv); d != "" {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("%s=%s: want an absolute path", DirEnv, d)
		}
		a.Dir = d
	}
	if r := os.Getenv(RangeEnv); r != "" {
		first, length, err := ParseRange(r)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", RangeEnv, r, err)
		}
		a.First, a.Length = first, length
	}
	return a, nil
}

// ParseRange parses <first>:<length>: a window that holds at least one
// range, above the host's root and below 2^32.
func ParseRange(s string) (first, length uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	f, err1 := strconv.ParseUint(a, 10, 32)
	l, err2 := strconv.ParseUint(b, 10, 32)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return 0, 0, errors.New("want <first host id>:<number of ids>, such as 1879048192:268304384")
	case f == 0:
		return 0, 0, errors.New("the window may not start at the host's root (0)")
	case l < uint64(Size):
		return 0, 0, fmt.Errorf("the window holds %d ids, fewer than one range (%d)", l, Size)
	case f+l > 1<<32:
		return 0, 0, errors.New("the window ends beyond the last id (4294967295)")
	}
	return uint32(f), uint32(l), nil
}

// slots is how many ranges the window holds.
func (a *Allocator) slots() uint32 { return a.Length / Size }

func (a *Allocator) slotFirst(i uint32) uint32 { return a.First + i*Size }

// Reserve returns owner's range, reserving one if it has none, held by
// holders as well as by its holders so far. It fails when no range is
// free (after reclaiming those of owners that no longer exist) or the state
// cannot be read or written.
func (a *Allocator) Reserve(owner Owner, holders ...string) (Entry, error) {
	var got Entry
	err := a.update(func(st *state) (bool, error) {
		if i := slices.IndexFunc(st.Entries, func(e Entry) bool { return e.Owner == owner && !e.Own }); i >= 0 {
			changed := st.Entries[i].hold(holders)
			got = st.Entries[i]
			return changed, nil
		}
		f, err := readForbidden(a.Etc)
		if err != nil {
			return false, err
		}
		slot, ok := a.free(st, f)
		if !ok && a.Alive != nil && a.reclaim(st) {
			slot, ok = a.free(st, f)
		}
		if !ok {
			return false, fmt.Errorf("no free range of %d host ids in %d-%d (%s=%d:%d): %d reserved, the rest overlap /etc/subuid, /etc/subgid or host users",
				Size, a.First, uint64(a.First)+uint64(a.Length)-1, RangeEnv, a.First, a.Length, len(st.Entries))
		}
		got = Entry{Owner: owner, HostID: a.slotFirst(slot), Size: Size}
		got.hold(holders) // a new entry: held, not kept
		got.Since = a.clock()
		st.Entries = append(st.Entries, got)
		st.Next = (slot + 1) % a.slots()
		return true, nil
	})
	return got, err
}

// Record notes a range a workload brought (hostUsers: false) for owner,
// held by holders, so that none is handed out over it. It fails when the
// range overlaps another owner's or holds a host user's or group's id.
func (a *Allocator) Record(owner Owner, hostID, size uint32, holders ...string) error {
	if size == 0 {
		return nil
	}
	return a.update(func(st *state) (bool, error) {
		f, err := readForbidden(a.Etc)
		if err != nil {
			return false, err
		}
		for _, e := range st.Entries {
			if e.Owner != owner && e.overlaps(hostID, size) {
				return false, fmt.Errorf("host ids %d-%d overlap %d-%d, reserved for %s", hostID, uint64(hostID)+uint64(size)-1, e.HostID, e.end()-1, e.Owner)
			}
		}
		if id, ok := f.userIn(hostID, size); ok {
			return false, fmt.Errorf("host ids %d-%d hold id %d of a host user or group", hostID, uint64(hostID)+uint64(size)-1, id)
		}
		if i := slices.IndexFunc(st.Entries, func(e Entry) bool { return e.Owner == owner && e.HostID == hostID && e.Size == size }); i >= 0 {
			return st.Entries[i].hold(holders), nil
		}
		e := Entry{Owner: owner, HostID: hostID, Size: size, Own: true}
		e.hold(holders) // a new entry: held, not kept
		e.Since = a.clock()
		st.Entries = append(st.Entries, e)
		return true, nil
	})
}

// Drop lets holder go of owner's ranges, and releases those it was the last
// holder of. An entry of before holders (none, or kept) is left to
// reclaim. Dropping a hold that does not exist is not an error.
func (a *Allocator) Drop(owner Owner, holder string) error {
	if _, err := os.Stat(filepath.Join(a.Dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return nil // nothing was ever reserved on this node
	}
	return a.update(func(st *state) (bool, error) {
		changed := false
		kept := st.Entries[:0]
		for _, e := range st.Entries {
			if e.Owner == owner && slices.Contains(e.Holders, holder) {
				e.Holders = slices.DeleteFunc(slices.Clone(e.Holders), func(h string) bool { return h == holder })
				changed = true
				if len(e.Holders) == 0 && !e.Kept {
					continue // the last hold
				}
			}
			kept = append(kept, e)
		}
		st.Entries = kept
		return changed, nil
	})
}

// Release gives back every range of owner, whoever holds it. Releasing an
// owner without one is not an error.
func (a *Allocator) Release(owner Owner) error {
	if _, err := os.Stat(filepath.Join(a.Dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return nil // nothing was ever reserved on this node
	}
	return a.update(func(st *state) (bool, error) {
		n := len(st.Entries)
		st.Entries = slices.DeleteFunc(st.Entries, func(e Entry) bool { return e.Owner == owner })
		return len(st.Entries) != n, nil
	})
}

// Has reports whether owner has a range, without creating the allocator's
// state where nothing was ever reserved.
func (a *Allocator) Has(owner Owner) (bool, error) {
	if _, err := os.Stat(filepath.Join(a.Dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	entries, err := a.Entries()
	return slices.ContainsFunc(entries, func(e Entry) bool { return e.Owner == owner }), err
}

// Entries returns the reserved ranges.
func (a *Allocator) Entries() ([]Entry, error) {
	var out []Entry
	err := a.update(func(st *state) (bool, error) {
		out = slices.Clone(st.Entries)
		return false, nil
	})
	return out, err
}

func (a *Allocator) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// free finds the next slot, from st.Next on, that no entry overlaps and no
// host id forbids.
func (a *Allocator) free(st *state, f *forbidden) (uint32, bool) {
	n := a.slots()
	for k := uint32(0); k < n; k++ {
		slot := (st.Next + k) % n
		first := a.slotFirst(slot)
		if slices.ContainsFunc(st.Entries, func(e Entry) bool { return e.overlaps(first, Size) }) || f.forbids(first, Size) {
			continue
		}
		return slot, true
	}
	return 0, false
}

// reclaim drops the entries of which containerd has neither the owner nor
// any holder, and reports whether it dropped any.
func (a *Allocator) reclaim(st *state) bool {
	n := len(st.Entries)
	st.Entries = slices.DeleteFunc(st.Entries, func(e Entry) bool {
		for _, id := range append([]string{e.Owner.ID}, e.Holders...) {
			alive, err := a.Alive(Owner{Namespace: e.Owner.Namespace, ID: id})
			if err != nil || alive {
				return false
			}
		}
		return true
	})
	return len(st.Entries) != n
}

// update runs fn on the state under the lock, and writes the state back
// when fn reports a change.
func (a *Allocator) update(fn func(*state) (bool, error)) error {
	if a.Length/Size == 0 || a.First == 0 {
		return fmt.Errorf("user namespace ranges: the window %d:%d holds no range", a.First, a.Length)
	}
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return fmt.Errorf("user namespace ranges: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(a.Dir, lockFile), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("user namespace ranges: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := flock(lock); err != nil {
		return fmt.Errorf("user namespace ranges: lock %s: %w", lock.Name(), err)
	}
	file := filepath.Join(a.Dir, stateFile)
	var st state
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		st.Version = stateVersion
	case err != nil:
		return fmt.Errorf("user namespace ranges: %w", err)
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("user namespace ranges: %s: %w (move it away to start afresh, once no container of this node runs in a user namespace)", file, err)
		}
		if st.Version != stateVersion {
			return fmt.Errorf("user namespace ranges: %s has version %d, this runtime reads %d", file, st.Version, stateVersion)
		}
	}
	changed, err := fn(&st)
	if err != nil {
		return fmt.Errorf("user namespace ranges: %w", err)
	}
	if !changed {
		return nil
	}
	if n := a.slots(); st.Next >= n {
		st.Next = 0
	}
	out, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(file, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("user namespace ranges: %w", err)
	}
	return nil
}

// flock takes an exclusive lock on f, retrying when a signal interrupts.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// forbidden are the host ids no range may hold: the subordinate ranges of
// /etc/subuid and /etc/subgid (rootless containers, the kubelet's user
// namespaces) and the ids of /etc/passwd and /etc/group.
type forbidden struct {
	ranges [][2]uint64 // [first, end)
	ids    []uint32
}

func (f *forbidden) forbids(first, size uint32) bool {
	end := uint64(first) + uint64(size)
	for _, r := range f.ranges {
		if uint64(first) < r[1] && r[0] < end {
			return true
		}
	}
	_, ok := f.userIn(first, size)
	return ok
}

func (f *forbidden) userIn(first, size uint32) (uint32, bool) {
	for _, id := range f.ids {
		if id >= first && uint64(id) < uint64(first)+uint64(size) {
			return id, true
		}
	}
	return 0, false
}

// readForbidden reads the files of etc; a missing file forbids nothing, an
// unreadable one is an error (fail closed).
func readForbidden(etc string) (*forbidden, error) {
	f := &forbidden{}
	for _, name := range []string{"subuid", "subgid"} {
		lines, err := readLines(filepath.Join(etc, name))
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			parts := strings.Split(l, ":")
			if len(parts) != 3 {
				continue
			}
			first, err1 := strconv.ParseUint(parts[1], 10, 32)
			n, err2 := strconv.ParseUint(parts[2], 10, 32)
			if err1 == nil && err2 == nil && n > 0 {
				f.ranges = append(f.ranges, [2]uint64{first, first + n})
			}
		}
	}
	for _, name := range []string{"passwd", "group"} {
		lines, err := readLines(filepath.Join(etc, name))
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			parts := strings.Split(l, ":")
			if len(parts) < 3 {
				continue
			}
			if id, err := strconv.ParseUint(parts[2], 10, 32); err == nil {
				f.ids = append(f.ids, uint32(id))
			}
		}
	}
	return f, nil
}

func readLines(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}
