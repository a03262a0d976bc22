package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/policy"
)

// A hardened container that exits with an error soon after it started
// usually failed on what the hardening took away, and says so only in its
// own words ("Read-only file system", "Operation not permitted", "No space
// left on device"): nothing was refused. The exit watch explains such an
// exit where people look, before containerd hears of it:
//
//   - one warning in the shim's log (containerd's log), naming the user
//     the container ran as, what was writable and how large, and the
//     policy knob for each usual message;
//   - the record (hardened.json, earlyExit), for `hardenctl` and admins;
//   - an event /hardened/early-exit in containerd's event stream (`ctr
//     events`);
//   - for a Kubernetes container whose termination message file (the
//     kubelet's /dev/termination-log) it left empty, that file: the
//     kubelet reads it once containerd reports the exit, and `kubectl
//     describe pod` shows it as the container's last state's message.
//     The CRI plugin's reason and message of a container status are its
//     own (Error, OOMKilled, ...); a shim cannot set them.
//
// The exit watch reads the container's output only where the CRI plugin
// writes it to a log file (Kubernetes): its last lines name the message
// that picks the knob. It never owns the container's IO: for `ctr run` the
// output went to the user's terminal, and the warning lists every knob.

// TopicEarlyExit is the topic of the event of an early exit.
const TopicEarlyExit = "/hardened/early-exit"

// earlyExitWindow is how soon after its start an exit counts as early.
const earlyExitWindow = 30 * time.Second

// earlyExit is what the record keeps of an early exit.
type earlyExit struct {
	// Status is the exit status; After the time from start to exit.
	Status uint32 `json:"status"`
	After  string `json:"after"`
	// Message is the warning, as the log has it.
	Message string `json:"message"`
	// Cause names the usual message found in the container's log, if
	// any: read-only, permission, no-space.
	Cause string `json:"cause,omitempty"`
	// LogTail is the last lines of the container's log, where the CRI
	// plugin writes one.
	LogTail []string `json:"logTail,omitempty"`
}

// exitWatch is the task service's publisher, wrapped: it sees each task's
// start and exit before containerd does.
type exitWatch struct {
	shim.Publisher

	// lookup returns the hardened container of an id (the service's).
	lookup func(id string) *hardenedContainer
	// now is time.Now, but in tests.
	now func() time.Time

	// mu guards started.
	mu      sync.Mutex
	started map[string]time.Time
}

func newExitWatch(p shim.Publisher) *exitWatch {
	return &exitWatch{Publisher: p, now: time.Now, started: map[string]time.Time{}}
}

// Publish explains an early exit, then forwards the event.
func (w *exitWatch) Publish(ctx context.Context, topic string, ev events.Event) error {
	switch e := ev.(type) {
	case *eventstypes.TaskStart:
		w.mu.Lock()
		w.started[e.ContainerID] = w.now()
		w.mu.Unlock()
	case *eventstypes.TaskExit:
		if e.ID == e.ContainerID || e.ID == "" {
			w.exited(ctx, e)
		}
	}
	return w.Publisher.Publish(ctx, topic, ev)
}

func (w *exitWatch) exited(ctx context.Context, e *eventstypes.TaskExit) {
	w.mu.Lock()
	start, ok := w.started[e.ContainerID]
	delete(w.started, e.ContainerID)
	w.mu.Unlock()
	end := w.now()
	if e.ExitedAt != nil {
		end = e.ExitedAt.AsTime()
	}
	// Errors of the application only: a signal (128+n) is someone's kill
	// or the OOM killer, which containerd reports itself.
	if !ok || e.ExitStatus == 0 || e.ExitStatus > 127 || end.Sub(start) > earlyExitWindow || w.lookup == nil {
		return
	}
	c := w.lookup(e.ContainerID)
	if c == nil || c.rec == nil || c.rec.Mode == policy.Audit || c.rec.Refusal != nil {
		return
	}
	explainEarlyExit(ctx, w.Publisher, c, e.ContainerID, e.ExitStatus, end.Sub(start))
}

// explainEarlyExit writes the explanation where people look.
func explainEarlyExit(ctx context.Context, pub shim.Publisher, c *hardenedContainer, id string, status uint32, after time.Duration) {
	rec := c.rec
	s, err := readSpec(c.bundle)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: explain an early exit")
		return
	}
	tail := logTail(rec.Container.LogPath)
	x := explain(rec, s, status, after, tail)
	log.G(ctx).WithField("id", id).WithField("exit", status).WithField("cause", x.Cause).Warn(x.Message)
	rec.EarlyExit = x
	if data, err := json.Marshal(rec); err == nil {
		if err := atomicfile.Write(filepath.Join(c.bundle, RecordFile), data, 0o644); err != nil {
			log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: record an early exit")
		}
	}
	if err := writeTerminationMessage(s, rec.Container.TerminationMessagePath, x); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: termination message of an early exit")
	}
	if pub != nil {
		payload, err := earlyExitEvent(rec, id, x)
		if err == nil {
			err = pub.Publish(ctx, TopicEarlyExit, payload)
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: publish an early exit")
		}
	}
}

// knobs are the usual messages of a workload that the hardening stopped,
// and what would let it run.
var knobs = []struct {
	cause    string
	messages []string
	knob     string
}{
	{"read-only", []string{"read-only file system", "erofs", "(30:"},
		"\"Read-only file system\": the image's files are read-only; list the directory it writes in rootfs.writablePaths of a level for it (`hardenctl learn` lists them), or mount a volume there"},
	{"permission", []string{"operation not permitted", "permission denied", "are you root", "must be run as root", "must be root", "can't drop privilege", "eperm", "eacces", "(13:"},
		"\"Operation not permitted\", \"Permission denied\", \"are you root?\": it wants root or a capability; give it a level that runs it as root in a user namespace of its own (user.namespace), or a capability in capabilities.add, or baseline"},
	{"no-space", []string{"no space left on device", "enospc", "error 28", "(28:", "disk full"},
		"\"No space left on device\": a tmpfs is full; raise rootfs.tmpfsSize of its level, or mount a volume there (rootfs.volumes: disk gives the image's VOLUMEs one on disk)"},
}

// usernsKnob is the permission knob's advice that a container already
// root in a user namespace of its own has had.
const usernsKnob = "give it a level that runs it as root in a user namespace of its own (user.namespace), or a capability in capabilities.add, or baseline"

// knobFor is a knob's advice for the container of s.
func knobFor(knob string, s *specs.Spec) string {
	if s.Linux != nil && len(s.Linux.UIDMappings) > 0 {
		return strings.Replace(knob, usernsKnob, "it ran as root in a user namespace already: give it the capability it lacks in capabilities.add of its level, or baseline", 1)
	}
	return knob
}

// explain builds the explanation of an early exit (pure: unit-tested).
func explain(rec *record, s *specs.Spec, status uint32, after time.Duration, tail []string) *earlyExit {
	x := &earlyExit{Status: status, After: after.Round(10 * time.Millisecond).String(), LogTail: tail}
	var b strings.Builder
	fmt.Fprintf(&b, "hardened: container exited %d after %s, soon after it started, under level %s: ", status, x.After, rec.Level)
	if s.Process != nil {
		u := s.Process.User
		fmt.Fprintf(&b, "it ran as uid %d gid %d", u.UID, u.GID)
		if l := s.Linux; l != nil && len(l.UIDMappings) > 0 {
			m := l.UIDMappings[0]
			fmt.Fprintf(&b, " in a user namespace of its own (host uids %d-%d; its capabilities count only there)", m.HostID, uint64(m.HostID)+uint64(m.Size)-1)
		}
		for _, c := range rec.Changes {
			if c.Rule == "user" && c.Field == "process.user.uid" && !c.Note {
				fmt.Fprintf(&b, " (it asked for uid %s: %s)", c.From, c.Reason)
				break
			}
		}
	}
	if s.Root != nil && s.Root.Readonly {
		b.WriteString(", with a read-only root")
	}
	if w := writableSummary(rec, s); w != "" {
		b.WriteString("; writable: " + w)
	} else {
		b.WriteString("; nothing writable")
	}
	// The last line of the log with a usual message names the knob.
	var said string
	for i := len(tail) - 1; i >= 0 && x.Cause == ""; i-- {
		low := strings.ToLower(tail[i])
		for _, k := range knobs {
			for _, m := range k.messages {
				if x.Cause == "" && strings.Contains(low, m) {
					x.Cause, said = k.cause, tail[i]
				}
			}
		}
	}
	if x.Cause != "" {
		fmt.Fprintf(&b, "; its log says %q", lastLine([]string{said}))
		for _, k := range knobs {
			if k.cause == x.Cause {
				b.WriteString("; " + knobFor(k.knob, s))
			}
		}
	} else {
		b.WriteString("; if its log says ")
		for i, k := range knobs {
			if i > 0 {
				b.WriteString("; if ")
			}
			b.WriteString(knobFor(k.knob, s))
		}
	}
	b.WriteString("")
	x.Message = b.String()
	return x
}

// writableSummary lists what was writable: the rule's paths with their
// size (and copy-up), then the workload's own writable mounts.
func writableSummary(rec *record, s *specs.Spec) string {
	var parts []string
	seen := map[string]bool{}
	if rec.Writable != nil {
		for _, p := range rec.Writable.Paths {
			seen[p.Path] = true
			d := p.Path + " "
			if p.Medium == "disk" {
				d += "on disk"
			} else {
				d += "tmpfs " + p.Size
			}
			if p.CopyUp {
				d += " (copy-up)"
			}
			parts = append(parts, d)
		}
	}
	for _, m := range s.Mounts {
		dest := path.Clean(m.Destination)
		if seen[dest] || readOnlyMount(m) || systemMount(dest) {
			continue
		}
		seen[dest] = true
		switch {
		case m.Type == "tmpfs":
			size := "no size limit"
			for _, o := range m.Options {
				if v, ok := strings.CutPrefix(o, "size="); ok {
					size = v
				}
			}
			parts = append(parts, dest+" tmpfs "+size)
		case isBindMount(m):
			parts = append(parts, dest+" (mounted from the host)")
		}
	}
	return strings.Join(parts, ", ")
}

func readOnlyMount(m specs.Mount) bool {
	return slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rro")
}

// systemMount: the kernel's and the runtime's own mounts, and the files CRI
// binds, which are no place for an application's state.
func systemMount(dest string) bool {
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if dest == p || strings.HasPrefix(dest, p+"/") {
			return true
		}
	}
	return dest == "/etc/hosts" || dest == "/etc/hostname" || dest == "/etc/resolv.conf"
}

func isBindMount(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func lastLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return l
		}
	}
	return ""
}

// logTailBytes is how much of the end of the CRI log is read.
const logTailBytes = 8 << 10

// logTail returns the last lines of a CRI container log (each line
// "<time> <stream> <tag> <text>"), their text only, once the log has
// stopped growing for a moment (the CRI plugin copies the output in while
// the exit is reported). "" path: none.
func logTail(file string) []string {
	if file == "" || !filepath.IsAbs(file) {
		return nil
	}
	var data []byte
	size := int64(-1)
	for i := 0; i < 10; i++ {
		fi, err := os.Stat(file)
		if err != nil {
			return nil
		}
		if fi.Size() == size {
			break
		}
		size = fi.Size()
		time.Sleep(30 * time.Millisecond)
	}
	f, err := os.OpenFile(file, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if size > logTailBytes {
		f.Seek(size-logTailBytes, io.SeekStart)
	}
	data, _ = io.ReadAll(io.LimitReader(f, logTailBytes))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if size > logTailBytes && len(lines) > 1 {
		lines = lines[1:] // the first is cut
	}
	var out []string
	for _, l := range lines {
		// CRI log format: time, stream, P (partial) or F (full), text.
		if fields := strings.SplitN(l, " ", 4); len(fields) == 4 && (fields[1] == "stdout" || fields[1] == "stderr") {
			l = fields[3]
		}
		out = append(out, l)
	}
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	return out
}

// maxTerminationMessage is the most the kubelet reads of a termination
// message file.
const maxTerminationMessage = 4096

// writeTerminationMessage writes the explanation into the host file of the
// container's termination message (the kubelet's bind mount at
// terminationMessagePath), if the container left it empty.
func writeTerminationMessage(s *specs.Spec, messagePath string, x *earlyExit) error {
	if messagePath == "" {
		return nil
	}
	var src string
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == path.Clean(messagePath) && isBindMount(m) && filepath.IsAbs(m.Source) {
			src = m.Source
		}
	}
	if src == "" {
		return nil
	}
	f, err := os.OpenFile(src, os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 0 {
		return err
	}
	msg := x.Message
	if x.Cause == "" {
		if last := lastLine(x.LogTail); last != "" {
			msg = last + "\n" + msg
		}
	}
	if len(msg) > maxTerminationMessage {
		msg = msg[:maxTerminationMessage]
	}
	_, err = f.WriteString(msg)
	return err
}

// earlyExitEvent is the event's payload, in the form of hardened's other
// events (observe/event): an OCI runtime spec's JSON, which every
// containerd client decodes, its facts as hardened.dev/* annotations.
func earlyExitEvent(rec *record, id string, x *earlyExit) (*anypb.Any, error) {
	data, err := json.Marshal(&specs.Spec{Annotations: map[string]string{
		"hardened.dev/event":     "early-exit",
		"hardened.dev/container": rec.Container.Namespace + "/" + id,
		"hardened.dev/level":     rec.Level,
		"hardened.dev/exit":      strconv.FormatUint(uint64(x.Status), 10),
		"hardened.dev/after":     x.After,
		"hardened.dev/cause":     x.Cause,
		"hardened.dev/message":   x.Message,
	}})
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: event.SpecTypeURL, Value: data}, nil
}

// criExitMetadata is the part of the CRI plugin's record of a container
// the exit watch reads: its log file and the kubelet's termination message
// path (an annotation of its config).
type criExitMetadata struct {
	Version  string
	Metadata struct {
		LogPath string
		Config  *struct {
			Annotations map[string]string `json:"annotations"`
		}
	}
}

// terminationMessagePathAnnotation is the kubelet's annotation of a CRI
// container config that names its terminationMessagePath.
const terminationMessagePathAnnotation = "io.kubernetes.container.terminationMessagePath"

// criExitFacts returns the CRI container's log file and termination
// message path from its CRIMetadataExtension; "" where there are none.
func criExitFacts(value []byte) (logPath, terminationMessagePath string) {
	if len(value) == 0 {
		return "", ""
	}
	var md criExitMetadata
	if json.NewDecoder(bytes.NewReader(value)).Decode(&md) != nil || md.Version != "v1" {
		return "", ""
	}
	if md.Metadata.Config != nil {
		terminationMessagePath = md.Metadata.Config.Annotations[terminationMessagePathAnnotation]
	}
	return md.Metadata.LogPath, terminationMessagePath
}

// lookup returns the hardened container of id, or nil.
func (s *service) lookup(id string) *hardenedContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containers[id]
}
