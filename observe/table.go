package observe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/observe/event"
)

// Container is what the table knows of one hardened container.
type Container struct {
	event.Container
	// Seccomp is the profile runc installed, for the errno of a denial
	// (the kernel's record has the action only); nil when unknown.
	Seccomp *specs.LinuxSeccomp
	// Cgroup is the container's cgroup, as /proc/PID/cgroup shows it for
	// one hierarchy ("pids:/default/c1" or "0::/k8s.io/c1"), for the
	// processes the fork tree does not lead to a known pid.
	Cgroup string
}

// profiles caches the seccomp profiles of bundles by the sha256 of their
// JSON: the containers of a level share one, and decoding it (about 1 ms)
// was most of what reading a bundle cost. Bounded: cleared when full.
var (
	// profilesMu guards profileCache.
	profilesMu   sync.Mutex
	profileCache = map[[32]byte]*specs.LinuxSeccomp{}
)

const maxProfiles = 256

// readBundleSpec reads what the observer needs of a bundle's config.json:
// the annotations (CRI's name the pod) and the seccomp profile. The bundle
// goes with the container, often before its denials are read: so it is
// read when the container starts.
func readBundleSpec(bundle string) (map[string]string, *specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, nil, err
	}
	a, err := annotationsOf(data)
	if err != nil {
		return nil, nil, err
	}
	p, err := profileOf(data)
	return a, p, err
}

// annotationsOf decodes a spec's annotations and stops there (they come
// before the seccomp profile, most of the file).
func annotationsOf(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("config.json: not an object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("config.json: %w", err)
		}
		if key == "annotations" {
			var a map[string]string
			if err := dec.Decode(&a); err != nil {
				return nil, fmt.Errorf("config.json: annotations: %w", err)
			}
			return a, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("config.json: %w", err)
		}
	}
	return nil, nil
}

// profileOf decodes a spec's seccomp profile, once per distinct profile.
func profileOf(data []byte) (*specs.LinuxSeccomp, error) {
	// JSON escapes quotes inside strings: `"seccomp":` is the key.
	i := bytes.Index(data, []byte(`"seccomp":`))
	if i < 0 {
		return nil, nil
	}
	var raw json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data[i+len(`"seccomp":`):])).Decode(&raw); err != nil {
		return nil, fmt.Errorf("config.json: linux.seccomp: %w", err)
	}
	sum := sha256.Sum256(raw)
	profilesMu.Lock()
	p, ok := profileCache[sum]
	profilesMu.Unlock()
	if ok {
		return p, nil
	}
	p = &specs.LinuxSeccomp{}
	if err := json.Unmarshal(raw, p); err != nil {
		return nil, fmt.Errorf("config.json: linux.seccomp: %w", err)
	}
	profilesMu.Lock()
	if len(profileCache) >= maxProfiles {
		clear(profileCache)
	}
	profileCache[sum] = p
	profilesMu.Unlock()
	return p, nil
}

type tableKey struct{ ns, id string }

type tableEntry struct {
	c       *Container
	pids    map[int]bool
	deleted time.Time
}

// Table maps pids and cgroups to the hardened containers they belong to.
// A deleted container stays for Keep, for the records that arrive late.
type Table struct {
	// Keep is how long a deleted container is remembered (default 1 minute).
	Keep time.Duration

	// mu guards the maps.
	mu      sync.Mutex
	byKey   map[tableKey]*tableEntry
	byPid   map[int]*tableEntry
	byGroup map[string]*tableEntry
	onPurge func(*Container)
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{Keep: time.Minute, byKey: map[tableKey]*tableEntry{}, byPid: map[int]*tableEntry{}, byGroup: map[string]*tableEntry{}}
}

// Put adds a container or updates what is known of it.
func (t *Table) Put(c *Container) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tableKey{c.Namespace, c.ID}
	e, ok := t.byKey[k]
	if !ok {
		e = &tableEntry{pids: map[int]bool{}}
		t.byKey[k] = e
	} else if e.c.Cgroup != "" && t.byGroup[e.c.Cgroup] == e {
		delete(t.byGroup, e.c.Cgroup)
	}
	e.c, e.deleted = c, time.Time{}
	if c.Cgroup != "" {
		t.byGroup[c.Cgroup] = e
	}
}

// AddPid records pid (an init or exec process) as the container's.
func (t *Table) AddPid(ns, id string, pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byKey[tableKey{ns, id}]
	if !ok || pid <= 0 {
		return false
	}
	e.pids[pid] = true
	t.byPid[pid] = e
	return true
}

// Get returns the container ns/id.
func (t *Table) Get(ns, id string) (*Container, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byKey[tableKey{ns, id}]
	if !ok {
		return nil, false
	}
	return e.c, true
}

// Delete marks the container deleted; Purge forgets it after Keep.
func (t *Table) Delete(ns, id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[tableKey{ns, id}]; ok && e.deleted.IsZero() {
		e.deleted = now
	}
}

// Purge forgets the containers deleted more than Keep before now and
// returns them.
func (t *Table) Purge(now time.Time) []*Container {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []*Container
	for k, e := range t.byKey {
		if e.deleted.IsZero() || now.Sub(e.deleted) < t.Keep {
			continue
		}
		delete(t.byKey, k)
		for pid := range e.pids {
			if t.byPid[pid] == e {
				delete(t.byPid, pid)
			}
		}
		if t.byGroup[e.c.Cgroup] == e {
			delete(t.byGroup, e.c.Cgroup)
		}
		gone = append(gone, e.c)
	}
	return gone
}

// Live reports whether a container with the same Kubernetes (or, outside
// Kubernetes, containerd) names is in the table and not deleted.
func (t *Table) Live(names event.Container) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.byKey {
		if e.deleted.IsZero() && labelsOf(e.c.Container) == labelsOf(names) {
			return true
		}
	}
	return false
}

// Len is the number of containers not deleted.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range t.byKey {
		if e.deleted.IsZero() {
			n++
		}
	}
	return n
}

// byPidOf returns the container whose init or exec process pid is.
func (t *Table) byPidOf(pid int) (*Container, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byPid[pid]
	if !ok {
		return nil, false
	}
	return e.c, true
}

// byCgroupOf returns the container whose cgroup is one of lines (the
// lines of /proc/PID/cgroup).
func (t *Table) byCgroupOf(lines []string) (*Container, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range lines {
		if e, ok := t.byGroup[l]; ok {
			return e.c, true
		}
	}
	return nil, false
}

// cgroupLines reads /proc/PID/cgroup as "controllers:path" lines (the
// hierarchy number dropped): "pids:/default/c1", "0::/..." stays "0::/...".
func cgroupLines(procRoot string, pid int) ([]string, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		n, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if n == "0" {
			out = append(out, l) // cgroup v2: "0::/path"
			continue
		}
		out = append(out, rest)
	}
	return out, sc.Err()
}

// containerCgroup picks the line of an init process's cgroups that
// identifies its container: on cgroup v1 (hybrid included, where the v2
// line may stay at the root) the pids controller's, as every runtime puts
// a container in its own pids cgroup; on v2 the one line. A root cgroup
// identifies nothing: "".
func containerCgroup(lines []string) string {
	pick := ""
	for _, l := range lines {
		ctrl, _, _ := strings.Cut(l, ":")
		for _, c := range strings.Split(ctrl, ",") {
			if c == "pids" {
				pick = l
			}
		}
	}
	if pick == "" {
		for _, l := range lines {
			if strings.HasPrefix(l, "0::") {
				pick = l
			}
		}
	}
	if strings.HasSuffix(pick, ":/") {
		return ""
	}
	return pick
}
