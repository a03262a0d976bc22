// Package proctree follows process creation on the whole host through the
// kernel's process events connector (cn_proc), so that the container of a
// process can be found after the process has exited.
//
// A seccomp audit record names the process by pid only, and arrives after
// the syscall: a process that was denied and gave up (unshare, a crash
// loop's entrypoint) is often gone by then, and /proc no longer says which
// cgroup it was in (measured here: about half of the records of processes
// that exit right after the denial). The tree remembers, for a while after
// they exit, which process forked which, so the record's pid leads up to a
// process whose container is known (a container's init or exec process).
//
// It needs CAP_NET_ADMIN and the host's pid and network namespaces.
package proctree

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc          = 1
	cnValProc          = 1
	procCnMcastListen  = 1
	procCnMcastIgnore  = 2
	procEventNone      = 0x00000000
	procEventFork      = 0x00000001
	procEventExit      = 0x80000000
	sizeofCnMsg        = 20
	sizeofProcEventHdr = 16
)

// Offsets in a process event datagram: the netlink header, the connector
// header, then struct proc_event (what, cpu, timestamp, then the event).
const (
	offWhat      = unix.SizeofNlMsghdr + sizeofCnMsg
	offEventData = offWhat + sizeofProcEventHdr
)

// threadFilter is a socket filter that drops, in the kernel, the fork and
// exit events of threads (a new thread is a fork event whose child pid is
// not its thread group id): the tree needs processes only, and a node's Go
// and Java processes start and end threads all the time (measured: the
// wake-ups for them were most of the observer's CPU per container start).
// Classic BPF loads words in network byte order: the event kinds are
// compared byte-swapped, the pid pairs with each other.
var threadFilter = []unix.SockFilter{
	/* 0 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offWhat},
	/* 1 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: wire(procEventFork), Jt: 2, Jf: 0},
	/* 2 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: wire(procEventExit), Jt: 5, Jf: 0},
	/* 3 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // the rest: acknowledgements
	// fork: child_pid (data+8) == child_tgid (data+12)
	/* 4 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offEventData + 8},
	/* 5 */ {Code: unix.BPF_MISC | unix.BPF_TAX},
	/* 6 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offEventData + 12},
	/* 7 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X, Jt: 4, Jf: 5},
	// exit: process_pid (data+0) == process_tgid (data+4)
	/* 8 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offEventData},
	/* 9 */ {Code: unix.BPF_MISC | unix.BPF_TAX},
	/* 10 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offEventData + 4},
	/* 11 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X, Jt: 0, Jf: 1},
	/* 12 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
	/* 13 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0},
}

// noThreadFilter turns the filter off, and threadEventHook sees the thread
// events that reach the reader: a test shows the filter drops them.
var (
	noThreadFilter  = false
	threadEventHook func(tid int)
)

// wire is v as a classic BPF absolute load sees a native-endian word.
func wire(v uint32) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return binary.BigEndian.Uint32(b[:])
}

// MaxProcesses bounds the table: beyond it, the oldest exited entries go
// first and then forks are no longer recorded (Lost counts them), so a fork
// bomb cannot grow the observer without bound.
const MaxProcesses = 1 << 20

// Tree is the fork tree of the host's processes, live and recently exited.
type Tree struct {
	f    *os.File
	rc   syscall.RawConn
	keep time.Duration
	done chan struct{}
	// closing is closed by Close, to end the reader's pause.
	closing chan struct{}
	lost    atomic.Uint64

	// mu guards procs.
	mu    sync.Mutex
	procs map[int]*proc
}

type proc struct {
	parent int
	exited time.Time // zero while it runs
}

// Open subscribes to the process events and then reads the live processes
// from /proc (procRoot, normally "/proc"), so that no fork falls between
// the two. Exited processes are remembered for keep.
func Open(procRoot string, keep time.Duration) (*Tree, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("process events socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("process events: bind: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if !noThreadFilter {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(threadFilter)), Filter: &threadFilter[0]}); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("process events: attach the thread filter: %w", err)
		}
	}
	f := os.NewFile(uintptr(fd), "proc-connector")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &Tree{f: f, rc: rc, keep: keep, done: make(chan struct{}), closing: make(chan struct{}), procs: map[int]*proc{}}
	if err := t.listen(); err != nil {
		f.Close()
		return nil, err
	}
	go t.read()
	if err := t.seed(procRoot); err != nil {
		t.Close()
		return nil, err
	}
	go t.prune()
	return t, nil
}

// listen subscribes to every event, which the kernel acknowledges (with
// EPERM without CAP_NET_ADMIN), and then narrows the subscription to fork
// and exit events: Linux >= 6.6 filters them in the kernel, older kernels
// ignore the narrowing. The narrowed form is not acknowledged (the filter
// drops the acknowledgement too), so it cannot come first.
func (t *Tree) listen() error {
	if err := t.send(binary.NativeEndian.AppendUint32(nil, procCnMcastListen)); err != nil {
		return fmt.Errorf("process events: subscribe: %w", err)
	}
	ack, err := t.awaitAck(5 * time.Second)
	if err != nil {
		return fmt.Errorf("process events: no answer from the kernel (CONFIG_PROC_EVENTS?): %w", err)
	}
	if ack != nil {
		return ack
	}
	filtered := binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, procCnMcastListen), procEventFork|procEventExit)
	_ = t.send(filtered)
	return nil
}

// send sends a connector message with payload to the process events.
func (t *Tree) send(payload []byte) error {
	msg := make([]byte, unix.SizeofNlMsghdr+sizeofCnMsg+len(payload))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.NLMSG_DONE)
	ne.PutUint32(msg[12:], uint32(os.Getpid()))
	ne.PutUint32(msg[16:], cnIdxProc)
	ne.PutUint32(msg[20:], cnValProc)
	ne.PutUint16(msg[32:], uint16(len(payload)))
	copy(msg[36:], payload)
	var serr error
	err := t.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return serr
}

// awaitAck reads until the kernel's acknowledgement of a subscription and
// returns its error (nil when subscribed). Events that come first are kept.
func (t *Tree) awaitAck(d time.Duration) (ack error, err error) {
	t.f.SetReadDeadline(time.Now().Add(d))
	defer t.f.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	for {
		n, err := t.recv(buf)
		if err != nil {
			return nil, err
		}
		var got bool
		t.handle(buf[:n], func(errno uint32) {
			got = true
			if errno != 0 {
				ack = fmt.Errorf("process events: subscribe: %w (needs CAP_NET_ADMIN in the host's namespaces)", syscall.Errno(errno))
			}
		})
		if got {
			return ack, nil
		}
	}
}

func (t *Tree) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// batchDelay is how long the reader waits after draining the socket before
// it waits for the next event: a container's start is dozens of forks and
// exits in a burst, read in one go instead of one wake-up each (measured:
// 4.8 ms of CPU per container start without, see README). The tree lags
// the kernel by as much; records wait for it (Config.Retry).
const batchDelay = 20 * time.Millisecond

func (t *Tree) read() {
	defer close(t.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := t.recv(buf)
		for {
			if errors.Is(err, unix.ENOBUFS) {
				t.lost.Add(1)
			} else if err != nil {
				return // closed
			} else {
				t.handle(buf[:n], nil)
			}
			// Drain what is there without waiting.
			var rerr error
			if cerr := t.rc.Read(func(fd uintptr) bool {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
				return true
			}); cerr != nil {
				return
			}
			if errors.Is(rerr, unix.EAGAIN) {
				break
			}
			err = rerr
		}
		select {
		case <-t.closing:
			return
		case <-time.After(batchDelay):
		}
	}
}

// handle applies the events of one datagram; ack gets the error of a
// subscription acknowledgement.
func (t *Tree) handle(b []byte, ack func(errno uint32)) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(ne.Uint32(b[0:]))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return
		}
		msg := b[unix.SizeofNlMsghdr:l]
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		if len(msg) < sizeofCnMsg+sizeofProcEventHdr || ne.Uint32(msg[0:]) != cnIdxProc {
			continue
		}
		ev := msg[sizeofCnMsg:]
		data := ev[sizeofProcEventHdr:]
		switch ne.Uint32(ev[0:]) {
		case procEventNone:
			if ack != nil && len(data) >= 4 {
				ack(ne.Uint32(data[0:]))
			}
		case procEventFork:
			if len(data) >= 16 {
				parentTgid, childPid, childTgid := ne.Uint32(data[4:]), ne.Uint32(data[8:]), ne.Uint32(data[12:])
				if childPid == childTgid { // a process, not a thread
					t.forked(int(childTgid), int(parentTgid))
				} else if threadEventHook != nil {
					threadEventHook(int(childPid))
				}
			}
		case procEventExit:
			if len(data) >= 8 {
				pid, tgid := ne.Uint32(data[0:]), ne.Uint32(data[4:])
				if pid == tgid {
					t.exited(int(tgid))
				}
			}
		}
	}
}

func (t *Tree) forked(child, parent int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.procs[child]; ok {
		p.parent, p.exited = parent, time.Time{} // the pid was reused
		return
	}
	if len(t.procs) >= MaxProcesses {
		t.lost.Add(1)
		return
	}
	t.procs[child] = &proc{parent: parent}
}

func (t *Tree) exited(pid int) {
	t.mu.Lock()
	if p, ok := t.procs[pid]; ok {
		p.exited = time.Now()
	}
	t.mu.Unlock()
}

// seed records the live processes with their current parents.
func (t *Tree) seed(procRoot string) error {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return fmt.Errorf("read %s: %w", procRoot, err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, ok := readPPid(filepath.Join(procRoot, e.Name(), "stat"))
		if !ok {
			continue
		}
		t.mu.Lock()
		if _, known := t.procs[pid]; !known {
			t.procs[pid] = &proc{parent: ppid}
		}
		t.mu.Unlock()
	}
	return nil
}

// readPPid reads the parent pid from /proc/PID/stat: "pid (comm) S ppid ...",
// where comm may hold spaces and parentheses.
func readPPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b[i+1:]))
	sc.Split(bufio.ScanWords)
	var fields []string
	for sc.Scan() && len(fields) < 2 {
		fields = append(fields, sc.Text())
	}
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// prune forgets the processes that exited more than keep ago.
func (t *Tree) prune() {
	tick := time.NewTicker(max(t.keep/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.mu.Lock()
			for pid, p := range t.procs {
				if !p.exited.IsZero() && now.Sub(p.exited) > t.keep {
					delete(t.procs, pid)
				}
			}
			t.mu.Unlock()
		}
	}
}

// Lineage returns pid and its ancestors as they were forked, nearest
// first, as far as the tree knows them (at most 64).
func (t *Tree) Lineage(pid int) []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []int{pid}
	for len(out) < 64 {
		p, ok := t.procs[pid]
		if !ok || p.parent <= 0 || p.parent == pid {
			break
		}
		pid = p.parent
		out = append(out, pid)
	}
	return out
}

// Known reports whether the tree has pid, live or recently exited.
func (t *Tree) Known(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.procs[pid]
	return ok
}

// Len is the number of processes the tree holds.
func (t *Tree) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.procs)
}

// Lost counts the overruns (the kernel dropped events because the reader
// fell behind) and the forks not recorded because the table was full.
func (t *Tree) Lost() uint64 { return t.lost.Load() }

// Close unsubscribes (kernels before 6.6 count a listener until it says
// so, and make every fork pay for the events) and stops the reader.
func (t *Tree) Close() error {
	_ = t.send(binary.NativeEndian.AppendUint32(nil, procCnMcastIgnore))
	close(t.closing)
	err := t.f.Close()
	<-t.done
	return err
}
