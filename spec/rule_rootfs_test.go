package spec

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ctrRunInputs are the inputs of the ctr-run fixture (container demo of
// namespace default) with the image's filesystem and a volume directory.
func ctrRunInputs(root fs.FS, volumes ...string) Inputs {
	return Inputs{Host: Host{UnprivilegedPortSysctl: true},
		Image:     ImageInfo{Volumes: volumes, WorkingDir: "/app", Rootfs: root},
		Container: ContainerInfo{ID: "demo", Namespace: "default", VolumeDir: "/var/lib/hardened/volumes/default/demo"}}
}

func hardenCtrRun(t *testing.T, l *profiles.Level, in Inputs, mutate ...func(*specs.Spec)) *Result {
	t.Helper()
	s := readSpec(t, "ctr-run")
	for _, m := range mutate {
		m(s)
	}
	res, err := Harden(s, l, in)
	if err != nil {
		t.Fatalf("Harden = %v", err)
	}
	return res
}

func writableAt(res *Result, p string) (Writable, bool) {
	i := slices.IndexFunc(res.Writable, func(w Writable) bool { return w.Path == p })
	if i < 0 {
		return Writable{}, false
	}
	return res.Writable[i], true
}

func TestStatePaths(t *testing.T) {
	res := hardenCtrRun(t, level(t, "restricted"), ctrRunInputs(stateImage, "/var/lib/postgresql/data"))
	// Copied up where the image has something there; an empty directory
	// gets an empty tmpfs (a copy-up costs runc a mount aside and a move).
	for p, copyUp := range map[string]bool{"/var/cache/nginx": false, "/var/lib/postgresql": true, "/var/log": true,
		"/var/spool/cron": true, "/app/uploads": true, "/app/logs": false} {
		m, ok := hasMount(res.Spec, p)
		if !ok || m.Type != "tmpfs" {
			t.Errorf("%s: %+v, want a tmpfs", p, m)
			continue
		}
		for _, o := range []string{"nosuid", "nodev", "uid=65534", "gid=65534", "size=64m"} {
			if !slices.Contains(m.Options, o) {
				t.Errorf("%s options %v lack %s", p, m.Options, o)
			}
		}
		if slices.Contains(m.Options, "tmpcopyup") != copyUp {
			t.Errorf("%s options %v: want tmpcopyup %v", p, m.Options, copyUp)
		}
		if slices.Contains(m.Options, "noexec") {
			t.Errorf("%s is noexec under restricted", p)
		}
		if w, ok := writableAt(res, p); !ok || w.Kind != "state" || w.CopyUp != copyUp || w.Chown != copyUp || w.UID != 65534 {
			t.Errorf("%s: Writable %+v", p, w)
		}
	}
	// Never: the image's software, the package managers' records, the
	// application's code, what the image does not have, what is too large.
	for _, p := range []string{"/usr", "/usr/bin", "/var/lib/dpkg", "/var/cache/apt", "/app", "/var", "/var/lib", "/var/cache", "/app/data", "/var/lib/big"} {
		if m, ok := hasMount(res.Spec, p); ok {
			t.Errorf("%s is mounted: %+v", p, m)
		}
	}
	if !slices.ContainsFunc(res.Changes, func(c Change) bool {
		return c.Note && c.Field == "mounts[/var/lib/big]" && strings.Contains(c.Reason, "more there than a tmpfs of 64m")
	}) {
		t.Error("no note on /var/lib/big, too large to copy up")
	}
	// The tmpfs above the volume comes before it, and the volume is on
	// disk, below the container's volume directory.
	iParent := slices.IndexFunc(res.Spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/var/lib/postgresql" })
	iVol := slices.IndexFunc(res.Spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/var/lib/postgresql/data" })
	if iParent < 0 || iVol < iParent {
		t.Errorf("mounts %d (/var/lib/postgresql) and %d (its volume): the volume must come after", iParent, iVol)
	}
	vol := res.Spec.Mounts[iVol]
	if vol.Type != "bind" || vol.Source != "/var/lib/hardened/volumes/default/demo/var_lib_postgresql_data" || !slices.Contains(vol.Options, "nosuid") {
		t.Errorf("volume mount %+v", vol)
	}
	if w, ok := writableAt(res, "/var/lib/postgresql/data"); !ok || w.Medium != "disk" || w.Source != vol.Source || !w.Chown || w.Size != "" {
		t.Errorf("volume Writable %+v", w)
	}
	// /var/run is the image's own directory: shared scratch with copy-up.
	if m, ok := hasMount(res.Spec, "/var/run"); !ok || !slices.Contains(m.Options, "tmpcopyup") || !slices.Contains(m.Options, "mode=1777") {
		t.Errorf("/var/run: %+v", m)
	}
}

func TestStatePathsStrictAreNoExec(t *testing.T) {
	res := hardenCtrRun(t, level(t, "strict"), ctrRunInputs(stateImage, "/data"))
	for _, p := range []string{"/var/cache/nginx", "/app/uploads", "/data", "/tmp"} {
		if m, ok := hasMount(res.Spec, p); !ok || !slices.Contains(m.Options, "noexec") || !slices.Contains(m.Options, "size=32m") && m.Type == "tmpfs" {
			t.Errorf("%s under strict: %+v, want noexec (and the level's size)", p, m)
		}
	}
}

func TestStatePathsOfRootProcess(t *testing.T) {
	// baseline keeps a root process: copied-up files keep the image's
	// owners (the entrypoint chowns what it needs, then drops).
	l := level(t, "baseline")
	res := hardenCtrRun(t, l, ctrRunInputs(stateImage, "/data"), func(s *specs.Spec) { s.Process.User = specs.User{} })
	if res.Spec.Process.User.UID != 0 {
		t.Skipf("baseline runs uid %d", res.Spec.Process.User.UID)
	}
	for _, w := range res.Writable {
		if w.Chown {
			t.Errorf("%s: Chown for a root process", w.Path)
		}
	}
	if m, _ := hasMount(res.Spec, "/var/cache/nginx"); !slices.Contains(m.Options, "uid=0") {
		t.Errorf("/var/cache/nginx %v, want uid=0", m.Options)
	}
}

func TestStatePathsWithoutTheImage(t *testing.T) {
	l := level(t, "restricted").Clone()
	l.Rootfs.WritablePaths = []string{"/var/cache/nginx", "/srv/app/uploads"}
	res := hardenCtrRun(t, l, ctrRunInputs(nil))
	// The explicit paths, with copy-up (runc copies whatever is there).
	for _, p := range l.Rootfs.WritablePaths {
		if m, ok := hasMount(res.Spec, p); !ok || !slices.Contains(m.Options, "tmpcopyup") {
			t.Errorf("%s: %+v", p, m)
		}
	}
	if _, ok := hasMount(res.Spec, "/var/log"); ok {
		t.Error("/var/log mounted without knowing the image has it")
	}
	if !slices.ContainsFunc(res.Changes, func(c Change) bool { return c.Note && strings.Contains(c.Reason, "rootfs.statePaths not applied") }) {
		t.Error("no note that the state paths were not applied")
	}
}

func TestWritablePathLargerThanTmpfs(t *testing.T) {
	l := level(t, "restricted").Clone()
	l.Rootfs.WritablePaths = []string{"/var/lib/big"}
	res := hardenCtrRun(t, l, ctrRunInputs(stateImage))
	m, ok := hasMount(res.Spec, "/var/lib/big")
	if !ok || slices.Contains(m.Options, "tmpcopyup") {
		t.Errorf("/var/lib/big: %+v, want an empty tmpfs", m)
	}
	if w, _ := writableAt(res, "/var/lib/big"); w.CopyUp || w.Chown {
		t.Errorf("Writable %+v, want no copy-up", w)
	}
}

func TestStatePathsKeepTheWorkloadsMounts(t *testing.T) {
	l := level(t, "restricted").Clone()
	l.Mounts.AllowHostPaths = []string{"/srv"}
	res := hardenCtrRun(t, l, ctrRunInputs(stateImage, "/var/lib/postgresql/data"), bind("/srv/cache", "/var/cache/nginx"), bind("/srv/pg", "/var/lib/postgresql"))
	if m, _ := hasMount(res.Spec, "/var/cache/nginx"); m.Type != "bind" {
		t.Errorf("/var/cache/nginx = %+v, want the workload's bind", m)
	}
	// The volume below the workload's mount is part of it.
	if m, _ := hasMount(res.Spec, "/var/lib/postgresql/data"); m.Source != "" {
		t.Errorf("/var/lib/postgresql/data = %+v, want nothing (below the workload's mount)", m)
	}
	for _, w := range res.Writable {
		if strings.HasPrefix(w.Path, "/var/lib/postgresql") || w.Path == "/var/cache/nginx" {
			t.Errorf("Writable lists %s, which is the workload's", w.Path)
		}
	}
}

func TestStatePathsSymlinksAndWorkdir(t *testing.T) {
	root := fstest.MapFS{
		"var/log":          {Mode: fs.ModeSymlink | 0o777, Data: []byte("/srv/log")},
		"srv/log/x":        {Mode: 0o644},
		"var/cache/app":    {Mode: fs.ModeSymlink | 0o777, Data: []byte("../../etc")},
		"var/cache/nginx":  {Mode: fs.ModeDir | 0o755},
		"logs/a":           {Mode: 0o644},
		"usr/src/app/logs": {Mode: fs.ModeDir | 0o755},
		"tmp":              {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
	in := ctrRunInputs(root)
	in.Image.WorkingDir = "/"
	res := hardenCtrRun(t, level(t, "restricted"), in)
	for _, p := range []string{"/var/log", "/var/cache/app", "/logs", "/srv/log"} {
		if _, ok := hasMount(res.Spec, p); ok {
			t.Errorf("%s mounted (a link, or relative to WORKDIR /)", p)
		}
	}
	if _, ok := hasMount(res.Spec, "/var/cache/nginx"); !ok {
		t.Error("/var/cache/nginx not mounted")
	}
	// Without WORKDIR in the image, the process's cwd.
	in.Image.WorkingDir = ""
	res = hardenCtrRun(t, level(t, "restricted"), in, func(s *specs.Spec) { s.Process.Cwd = "/usr/src/app" })
	if _, ok := hasMount(res.Spec, "/usr/src/app/logs"); !ok {
		t.Error("/usr/src/app/logs not mounted with cwd /usr/src/app")
	}
}

func TestVolumeModes(t *testing.T) {
	for _, tc := range []struct {
		mode      profiles.VolumeMode
		volumeDir string
		want      string // mount type at /data, "" for none
	}{
		{profiles.VolumesDisk, "/var/lib/hardened/volumes/default/demo", "bind"},
		{profiles.VolumesDisk, "", "tmpfs"},
		{profiles.VolumesTmpfs, "/var/lib/hardened/volumes/default/demo", "tmpfs"},
		{profiles.VolumesNone, "/var/lib/hardened/volumes/default/demo", ""},
	} {
		l := level(t, "restricted").Clone()
		l.Rootfs.Volumes = tc.mode
		in := ctrRunInputs(stateImage, "/data", "data/", "/a_b", "/a/b")
		in.Container.VolumeDir = tc.volumeDir
		res := hardenCtrRun(t, l, in)
		m, ok := hasMount(res.Spec, "/data")
		if got := map[bool]string{true: m.Type}[ok]; got != tc.want {
			t.Errorf("volumes %s (dir %q): /data = %+v, want %q", tc.mode, tc.volumeDir, m, tc.want)
		}
		if tc.want == "tmpfs" && !slices.Contains(m.Options, "tmpcopyup") {
			t.Errorf("volumes %s: tmpfs without copy-up: %v", tc.mode, m.Options)
		}
		if tc.want == "bind" {
			a, _ := hasMount(res.Spec, "/a_b")
			b, _ := hasMount(res.Spec, "/a/b")
			if a.Source == b.Source || a.Source == "" {
				t.Errorf("volumes /a_b and /a/b share the directory %q", a.Source)
			}
		}
	}
}

func TestStatePathsAreIdempotent(t *testing.T) {
	l := level(t, "restricted")
	in := ctrRunInputs(stateImage, "/var/lib/postgresql/data", "/data")
	once := hardenCtrRun(t, l, in)
	twice, err := Harden(once.Spec, l, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(once.Writable, twice.Writable); diff != "" {
		t.Errorf("Writable of Harden(Harden(s)) differs (-once +twice):\n%s", diff)
	}
}

func TestTmpfsBytes(t *testing.T) {
	for in, want := range map[string]int64{"64m": 64 << 20, "1g": 1 << 30, "512k": 512 << 10, "4096": 4096, "10%": -1, "": -1, "m": -1, "-1m": -1} {
		got, ok := tmpfsBytes(in)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("tmpfsBytes(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestPingGroupRange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		level  string
		mutate func(*specs.Spec)
		want   string
	}{
		{"own network namespace", "restricted", nil, "0 2147483647"},
		{"host network", "host-network", dropNamespace(specs.NetworkNamespace), ""},
		{"strict does without", "strict", nil, ""},
		{"the workload's own value", "restricted", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{pingGroupRange: "1000 1000"} }, "1000 1000"},
		{"user namespace: its mapped range", "restricted", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, "0 65535"},
		{"user namespace without mappings", "restricted", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "ctr-run")
			if tc.mutate != nil {
				tc.mutate(s)
			}
			res, err := Harden(s, testLevel(t, tc.level), ctrRunInputs(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Spec.Linux.Sysctl[pingGroupRange]; got != tc.want {
				t.Errorf("%s = %q, want %q", pingGroupRange, got, tc.want)
			}
		})
	}
}

// TestCRIVolumes: containerd's CRI plugin mounts a directory of its own on
// each VOLUME of a pod's image; the rule leaves the mount and records it,
// for the runtime to give its files to a process user that is not root.
func TestCRIVolumes(t *testing.T) {
	s := readSpec(t, "real-cri-container")
	in := withFacts("real-cri-container", Inputs{Host: noAppArmorHost, Image: ImageInfo{Volumes: []string{"/data"}}})
	res, err := Harden(s, testLevel(t, "restricted"), in)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := hasMount(res.Spec, "/data")
	w, ok := writableAt(res, "/data")
	if !ok || w.MadeBy != "cri" || w.Medium != "disk" || w.Source != m.Source || !w.Chown || w.UID != 65534 {
		t.Errorf("Writable /data = %+v (mount %+v)", w, m)
	}
	// Another container's CRI volume is not this one's.
	in.Container.ID = "other"
	if res, _ := Harden(s, testLevel(t, "restricted"), in); res != nil {
		if w, ok := writableAt(res, "/data"); ok {
			t.Errorf("another container's CRI volume recorded: %+v", w)
		}
	}
}

func TestTaskVolumeDir(t *testing.T) {
	for _, tc := range [][4]string{
		{"/var/lib/containerd", "k8s.io", "abc", "/var/lib/containerd/io.containerd.runtime.v2.task/k8s.io/abc/volumes"},
		{"", "k8s.io", "abc", ""},
		{"relative", "k8s.io", "abc", ""},
		{"/var/lib/containerd", "..", "abc", ""},
		{"/var/lib/containerd", "k8s.io", "a/b", ""},
	} {
		if got := TaskVolumeDir(tc[0], tc[1], tc[2]); got != tc[3] {
			t.Errorf("TaskVolumeDir(%q, %q, %q) = %q, want %q", tc[0], tc[1], tc[2], got, tc[3])
		}
	}
}
