package seccompmodel

import (
	"encoding/binary"
	"hash/maphash"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Verdict is what to do with a workload's profile under a level's.
type Verdict struct {
	// Keep: everything the workload's profile may run, the level's surely
	// runs; the profile is kept as it is.
	Keep bool
	// Looser says what the workload's profile may run that the level's
	// does not surely run (nil when kept).
	Looser *Violation
	// Result is the intersection of both (nil when kept). It is shared:
	// copy it before changing it.
	Result *specs.LinuxSeccomp
	// SameAsLevel: Result is the level's profile itself (the workload's
	// profile denies nothing the level's runs).
	SameAsLevel bool
	// Losses are the parts both profiles run that Result denies (see
	// Intersect).
	Losses []string
}

// Judge compares a workload's profile w with a level's profile l, both as
// runc loads them on this machine: it keeps w when w runs nothing that l
// does not surely run and hands nothing to a user-space agent (no
// listenerPath, no notify rule); otherwise it returns their intersection.
// It fails when runc would fail to load w or l.
//
// Verdicts are cached per level profile (by pointer: l must not change
// after the first call) and per workload profile (by content), and the
// intersection is cached as a kept profile, so that hardening a hardened
// spec again costs a hash and a comparison.
func Judge(w, l *specs.LinuxSeccomp) (*Verdict, error) {
	if equalProfile(w, l) && w != nil {
		return kept, nil // the level's own profile, as a hardened spec has it
	}
	h := hashProfile(w)
	key := cacheKey{l: l, h: h}
	cache.mu.Lock()
	e, ok := cache.m[key]
	cache.mu.Unlock()
	if ok && equalProfile(e.w, w) {
		return e.v, e.err
	}
	v, err := judge(w, l)
	if size(w) > maxCachedSize {
		return v, err
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if len(cache.m) >= maxCache {
		clear(cache.m)
	}
	cache.m[key] = &cacheEntry{w: cloneProfile(w), v: v, err: err}
	if v != nil && v.Result != nil && !v.SameAsLevel {
		cache.m[cacheKey{l: l, h: hashProfile(v.Result)}] = &cacheEntry{w: v.Result, v: kept}
	}
	return v, err
}

func judge(w, l *specs.LinuxSeccomp) (*Verdict, error) {
	native := Native()
	lm, err := Load(l, native)
	if err != nil {
		return nil, err
	}
	wm, err := Load(w, native)
	if err != nil {
		return nil, err
	}
	var looser *Violation
	switch {
	case wm.Disabled:
		return &Verdict{Looser: &Violation{What: "no filter (every syscall runs)"}, Result: l, SameAsLevel: true}, nil
	case w.ListenerPath != "":
		looser = &Violation{What: "listenerPath " + w.ListenerPath + " (a user-space agent decides)"}
	case wm.notify:
		looser = &Violation{What: string(specs.ActNotify) + " rule (a user-space agent decides)"}
	default:
		looser = Subset(wm, lm)
		if looser == nil && wm.hasArch(specs.ArchX32) && !equalProfile(w, l) {
			looser = &Violation{What: "architecture " + string(specs.ArchX32) + x32Why}
		}
		if looser == nil {
			looser = wm.mergedBadly()
		}
	}
	if looser == nil {
		return kept, nil
	}
	out, losses, err := Intersect(wm, lm)
	if err != nil {
		return nil, err
	}
	same := equalProfile(out, l)
	if same {
		out = l
	}
	return &Verdict{Looser: looser, Result: out, SameAsLevel: same, Losses: losses}, nil
}

// x32Why: libseccomp 2.5.4 compiles some filters that list x32 wrongly for
// x86_64 calls too (rules for syscalls x86_64 lacks, like socketcall or
// chown32, break the argument checks of others), both ways: the
// cross-check in profiles/seccompbpf finds them. No profile but the level's
// own keeps x32, and an intersection never lists it (x32 binaries are
// rare; they get killed as a foreign architecture).
const x32Why = " (libseccomp 2.5 compiles some x86_64+x32 filters wrongly)"

var kept = &Verdict{Keep: true}

type cacheKey struct {
	l *specs.LinuxSeccomp
	h uint64
}

type cacheEntry struct {
	w   *specs.LinuxSeccomp
	v   *Verdict
	err error
}

// maxCache bounds the cache: every distinct profile a client sends adds an
// entry. maxCachedSize (names and conditions) keeps outsized profiles out
// of it: RuntimeDefault has about 400.
const (
	maxCache      = 512
	maxCachedSize = 4096
)

func size(p *specs.LinuxSeccomp) int {
	if p == nil {
		return 0
	}
	n := 0
	for _, r := range p.Syscalls {
		n += len(r.Names) + len(r.Args)
	}
	return n
}

var cache = struct {
	// mu guards m.
	mu sync.Mutex
	m  map[cacheKey]*cacheEntry
}{m: map[cacheKey]*cacheEntry{}}

var seed = maphash.MakeSeed()

// hashProfile is a seeded hash of a profile's content: each string hashed
// by maphash, the rest mixed in. Equal profiles hash alike; a collision only
// costs a recomputation (Judge compares the profiles).
func hashProfile(p *specs.LinuxSeccomp) uint64 {
	if p == nil {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	// Each string goes in after its length, so that neighbours cannot
	// trade characters (a collision would only cost a cache miss: a hit
	// is confirmed by comparing the profiles).
	str := func(s string) {
		h.Write(binary.AppendUvarint(buf[:0], uint64(len(s))))
		h.WriteString(s)
	}
	ptr := func(v *uint) {
		if v == nil {
			num(1 << 63)
			return
		}
		num(uint64(*v))
	}
	num(uint64(len(p.Syscalls)))
	str(string(p.DefaultAction))
	ptr(p.DefaultErrnoRet)
	num(uint64(len(p.Architectures)))
	for _, a := range p.Architectures {
		str(string(a))
	}
	num(uint64(len(p.Flags)))
	for _, f := range p.Flags {
		str(string(f))
	}
	str(p.ListenerPath)
	str(p.ListenerMetadata)
	for _, r := range p.Syscalls {
		num(uint64(len(r.Names)))
		for _, n := range r.Names {
			str(n)
		}
		str(string(r.Action))
		ptr(r.ErrnoRet)
		num(uint64(len(r.Args)))
		for _, a := range r.Args {
			num(uint64(a.Index))
			num(a.Value)
			num(a.ValueTwo)
			str(string(a.Op))
		}
	}
	return h.Sum64()
}

// equalProfile compares two profiles as config.json would hold them (an
// empty list and no list are the same).
func equalProfile(a, b *specs.LinuxSeccomp) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.DefaultAction != b.DefaultAction || !equalUint(a.DefaultErrnoRet, b.DefaultErrnoRet) ||
		a.ListenerPath != b.ListenerPath || a.ListenerMetadata != b.ListenerMetadata ||
		len(a.Architectures) != len(b.Architectures) || len(a.Flags) != len(b.Flags) || len(a.Syscalls) != len(b.Syscalls) {
		return false
	}
	for i := range a.Architectures {
		if a.Architectures[i] != b.Architectures[i] {
			return false
		}
	}
	for i := range a.Flags {
		if a.Flags[i] != b.Flags[i] {
			return false
		}
	}
	for i := range a.Syscalls {
		x, y := &a.Syscalls[i], &b.Syscalls[i]
		if x.Action != y.Action || !equalUint(x.ErrnoRet, y.ErrnoRet) || len(x.Names) != len(y.Names) || len(x.Args) != len(y.Args) {
			return false
		}
		for j := range x.Names {
			if x.Names[j] != y.Names[j] {
				return false
			}
		}
		for j := range x.Args {
			if x.Args[j] != y.Args[j] {
				return false
			}
		}
	}
	return true
}

func equalUint(a, b *uint) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func cloneProfile(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if p == nil {
		return nil
	}
	c := *p
	c.DefaultErrnoRet = cloneUint(p.DefaultErrnoRet)
	c.Architectures = append([]specs.Arch(nil), p.Architectures...)
	c.Flags = append([]specs.LinuxSeccompFlag(nil), p.Flags...)
	c.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, r := range p.Syscalls {
		r.Names = append([]string(nil), r.Names...)
		r.ErrnoRet = cloneUint(r.ErrnoRet)
		r.Args = append([]specs.LinuxSeccompArg(nil), r.Args...)
		c.Syscalls[i] = r
	}
	return &c
}
