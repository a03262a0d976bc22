package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/shim"
)

// The images of these tests follow the patterns of the most-pulled
// official images that a read-only root broke (issue 18): busybox-static
// scripts that do at start what those entrypoints do, under the default
// policy (restricted: a root image runs as 65534, seccomp on, read-only
// root). Each runs with no policy change.

// syncBuffer is a buffer a task's output is copied into while tests read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// app is a running container of an application image.
type app struct {
	id   string
	ctr  containerd.Container
	task containerd.Task
	out  *syncBuffer
	exit <-chan containerd.ExitStatus
}

// startApp imports img and starts it under the hardened runtime with its
// own config, its output in a buffer.
func startApp(t *testing.T, ctx context.Context, img harness.AppImage, opts ...oci.SpecOpts) *app {
	t.Helper()
	image := harness.ImportApp(t, cd, ns, img)
	c := cd.Client(t)
	a := &app{id: newID(strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")), out: &syncBuffer{}}
	var err error
	a.ctr, err = c.NewContainer(ctx, a.id, containerd.WithImage(image), containerd.WithNewSnapshot(a.id, image),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(image)}, opts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	a.task, err = a.ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, a.out, a.out), cio.WithFIFODir(filepath.Join(cd.Dir, "fifo"))))
	if err != nil {
		t.Fatalf("create %s: %v", img.Name, err)
	}
	t.Cleanup(func() { a.task.Delete(context.Background(), containerd.WithProcessKill) })
	if a.exit, err = a.task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.task.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", img.Name, err)
	}
	return a
}

// waitOutput waits for the container to print want, and fails if it
// exits first.
func (a *app) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(a.out.String(), want) {
		select {
		case st := <-a.exit:
			t.Fatalf("the container exited %d before printing %q; its output:\n%s", st.ExitCode(), want, a.out.String())
		case <-deadline:
			t.Fatalf("the container did not print %q; its output:\n%s", want, a.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exec runs a shell command in the container, as containerd's stored spec
// says (root: the shim makes it the container's user).
func (a *app) exec(t *testing.T, ctx context.Context, script string) string {
	t.Helper()
	s, err := a.ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	p.Args, p.Terminal = []string{"sh", "-c", script}, false
	out, err := execIn(ctx, a.task, newID("x"), p)
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	return out
}

// record reads the container's hardened.json.
func (a *app) record(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, a.id, shim.RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// writablePaths are the record's writable.paths by path.
func (a *app) writablePaths(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	w, _ := a.record(t)["writable"].(map[string]any)
	ps, _ := w["paths"].([]any)
	for _, p := range ps {
		m := p.(map[string]any)
		out[m["path"].(string)] = m
	}
	return out
}

// checkHardened checks what every pattern runs with: no process of the
// container on host uid or gid 0 (root only in a user namespace of its
// own, every id in its range, with the level's namespaced capabilities;
// where the kernel cannot idmap, 65534 with none), seccomp filtering, no
// new privileges, and the image's files immutable.
func (a *app) checkHardened(t *testing.T, ctx context.Context, imageFiles ...string) {
	t.Helper()
	pids, err := a.task.Pids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all []uint32
	for _, p := range pids {
		all = append(all, p.Pid)
	}
	first, inUserns := a.userNamespace(t)
	if inUserns {
		checkHostIDsIn(t, a.id, all, first)
	} else {
		for _, pid := range all {
			uids, gids := hostIDs(t, pid)
			if slices.Contains(append(uids, gids...), 0) {
				t.Errorf("process %d runs with host uids %v gids %v", pid, uids, gids)
			}
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.task.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if v := statusField(string(status), "Seccomp"); v != "2" {
		t.Errorf("Seccomp: %s, want 2 (filtering)", v)
	}
	if v := statusField(string(status), "NoNewPrivs"); v != "1" {
		t.Errorf("NoNewPrivs: %s, want 1", v)
	}
	want := "0000000000000000"
	if inUserns {
		want = namespacedCaps
	}
	if v := statusField(string(status), "CapEff"); v != want {
		t.Errorf("CapEff: %s, want %s (in a user namespace of its own: %v)", v, want, inUserns)
	}
	for _, f := range append(imageFiles, "/bin/busybox", "/etc/passwd") {
		out := a.exec(t, ctx, "touch "+f+" 2>&1; echo exit=$?")
		if !strings.Contains(out, "Read-only file system") || strings.Contains(out, "exit=0") {
			t.Errorf("touch %s in the container: %q, want Read-only file system", f, out)
		}
	}
}

// userNamespace reads the container's uid_map: the first host id of its
// user namespace, and whether it has one of its own.
func (a *app) userNamespace(t *testing.T) (uint32, bool) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", a.task.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(data)); len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
		return 0, false
	}
	return rangeOf(t, a.task.Pid()), true
}

// hostOwner is the host uid that the container's user uid (in it) has on
// the host: through its user namespace, or as it is.
func (a *app) hostOwner(t *testing.T, uid uint32) uint32 {
	t.Helper()
	if first, ok := a.userNamespace(t); ok {
		return first + uid
	}
	return uid
}

// processUser is the uid the container's process runs as, in it: 0 in a
// user namespace of its own, else the level's 65534.
func (a *app) processUser(t *testing.T) uint32 {
	t.Helper()
	if _, ok := a.userNamespace(t); ok {
		return 0
	}
	return 65534
}

// stop kills the task and waits for it.
func (a *app) stop(t *testing.T, ctx context.Context) {
	t.Helper()
	a.task.Kill(ctx, syscall.SIGKILL)
	select {
	case <-a.exit:
	case <-ctx.Done():
	}
}

// TestNginxLikeCacheDirs: nginx makes its temp directories below
// /var/cache/nginx at start (mkdir() "/var/cache/nginx/client_temp" failed
// (30: Read-only file system) until now), writes its pid to /var/run and its
// error log to /var/log/nginx, then serves on port 80.
func TestNginxLikeCacheDirs(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	a := startApp(t, ctx, harness.AppImage{
		Name: "hardened.test/nginx-like:1",
		Config: v1.Config{Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"},
		Files: []harness.File{
			{Path: "etc/nginx", Dir: true},
			{Path: "etc/nginx/nginx.conf", Data: "user nginx;\nworker_processes auto;\npid /var/run/nginx.pid;\n", Mode: 0o644},
			{Path: "usr/share/nginx/html", Dir: true},
			{Path: "usr/share/nginx/html/index.html", Data: "hello from nginx-like\n", Mode: 0o644},
			{Path: "var/cache", Dir: true},
			{Path: "var/cache/nginx", Dir: true},
			{Path: "var/log", Dir: true},
			{Path: "var/log/nginx", Dir: true},
			{Path: "docker-entrypoint.sh", Data: `#!/bin/sh
set -e
# what nginx does before it serves: its temp directories, its pid file, its log
mkdir /var/cache/nginx/client_temp /var/cache/nginx/proxy_temp /var/cache/nginx/fastcgi_temp
echo $$ > /var/run/nginx.pid
echo "$(date) [notice] start worker processes" >> /var/log/nginx/error.log
echo ready
exec httpd -f -p 80 -h /usr/share/nginx/html
`},
		},
	})
	a.waitOutput(t, "ready")
	if out := a.exec(t, ctx, "wget -qO- http://127.0.0.1:80/"); !strings.Contains(out, "hello from nginx-like") {
		t.Errorf("GET / = %q", out)
	}
	if out := a.exec(t, ctx, "ls -dn /var/cache/nginx/client_temp; cat /var/log/nginx/error.log"); !strings.Contains(out, fmt.Sprintf(" %d ", a.processUser(t))) || !strings.Contains(out, "start worker processes") {
		t.Errorf("cache and log: %q", out)
	}
	a.checkHardened(t, ctx, "/usr/share/nginx/html/index.html", "/etc/nginx/nginx.conf", "/docker-entrypoint.sh")
	w := a.writablePaths(t)
	if p := w["/var/cache/nginx"]; p == nil || p["kind"] != "state" || p["medium"] != "tmpfs" {
		t.Errorf("record: /var/cache/nginx = %v", p)
	}
	for _, p := range []string{"/usr", "/usr/share/nginx/html", "/etc/nginx"} {
		if w[p] != nil {
			t.Errorf("record: %s made writable", p)
		}
	}
	a.stop(t, ctx)
}

// TestAppWritesUnderWorkdir: an application writes uploads/ and logs/
// below its WORKDIR, which the image has (with a file in uploads/), while
// its code beside them stays read-only.
func TestAppWritesUnderWorkdir(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	a := startApp(t, ctx, harness.AppImage{
		Name:   "hardened.test/workdir-app:1",
		Config: v1.Config{WorkingDir: "/app", Entrypoint: []string{"./server.sh"}},
		Files: []harness.File{
			{Path: "app", Dir: true},
			{Path: "app/lib", Dir: true},
			{Path: "app/lib/util.sh", Data: "greet() { echo hello; }\n", Mode: 0o644},
			{Path: "app/uploads", Dir: true},
			{Path: "app/uploads/.keep", Mode: 0o644},
			{Path: "app/logs", Dir: true},
			{Path: "app/server.sh", Data: `#!/bin/sh
. ./lib/util.sh
echo "upload at $(date)" > uploads/first.txt || exit 1
echo "$(greet) started" >> logs/app.log || exit 1
test -f uploads/.keep || { echo "the image's uploads/.keep is gone"; exit 1; }
if echo x > server.sh 2>/dev/null; then echo "the code is writable"; exit 1; fi
if touch lib/new 2>/dev/null; then echo "lib is writable"; exit 1; fi
if mkdir /app/new 2>/dev/null; then echo "the WORKDIR is writable"; exit 1; fi
echo ready
exec sleep 600
`},
		},
	})
	a.waitOutput(t, "ready")
	if out := a.exec(t, ctx, "cat /app/logs/app.log; ls -n /app/uploads"); !strings.Contains(out, "hello started") || !strings.Contains(out, "first.txt") {
		t.Errorf("the application's files: %q", out)
	}
	a.checkHardened(t, ctx, "/app/server.sh", "/app/lib/util.sh")
	a.stop(t, ctx)
}

// TestSupervisordLikeLogs: supervisord with user= set must be root ("Can't
// drop privilege as nonroot user" otherwise), writes its log to
// /var/log/supervisor and its pid to /var/run, and starts its program as
// the program's own user, whose output goes to a file in
// /var/log/supervisor: root in a user namespace of its own, every host id
// in its range.
func TestSupervisordLikeLogs(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	a := startApp(t, ctx, harness.AppImage{
		Name:   "hardened.test/supervisord-like:1",
		Config: v1.Config{Entrypoint: []string{"/usr/bin/supervisord"}, Cmd: []string{"-n", "-c", "/etc/supervisor/supervisord.conf"}},
		Files: []harness.File{
			{Path: "etc/supervisor", Dir: true},
			{Path: "etc/supervisor/supervisord.conf", Data: "[supervisord]\nuser=root\nlogfile=/var/log/supervisor/supervisord.log\npidfile=/var/run/supervisord.pid\n[program:app]\nuser=app\ncommand=/bin/sh -c 'while true; do echo tick; sleep 1; done'\n", Mode: 0o644},
			{Path: "var/log", Dir: true},
			{Path: "var/log/supervisor", Dir: true},
			{Path: "usr/bin", Dir: true},
			{Path: "usr/bin/supervisord", Data: `#!/bin/sh
# supervisord with user= set: it must be root to drop to that user, and
# it starts each program as the program's user=.
if [ "$(id -u)" != 0 ]; then echo "Error: Can't drop privilege as nonroot user" >&2; exit 2; fi
log=/var/log/supervisor/supervisord.log
echo "INFO supervisord started with pid $$" >> $log || exit 1
echo $$ > /var/run/supervisord.pid || exit 1
touch /var/log/supervisor/app-stdout---supervisor.log && chown app:app /var/log/supervisor/app-stdout---supervisor.log || exit 1
su -s /bin/sh app -c 'while true; do echo "tick as $(id -u)"; sleep 1; done >> /var/log/supervisor/app-stdout---supervisor.log 2>&1' &
echo "INFO spawned: 'app' with pid $!" >> $log
echo ready
wait
`},
		},
	})
	a.waitOutput(t, "ready")
	deadline := time.Now().Add(30 * time.Second)
	for out := ""; !strings.Contains(out, "tick as 1000"); out = a.exec(t, ctx, "cat /var/log/supervisor/app-stdout---supervisor.log") {
		if time.Now().After(deadline) {
			t.Fatalf("the program's log: %q", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := a.exec(t, ctx, "cat /var/log/supervisor/supervisord.log /var/run/supervisord.pid"); !strings.Contains(out, "spawned: 'app'") {
		t.Errorf("supervisord's log: %q", out)
	}
	a.checkHardened(t, ctx, "/usr/bin/supervisord", "/etc/supervisor/supervisord.conf")
	a.stop(t, ctx)
}

// TestPackageManagerLikeState: an entrypoint runs a package-manager-like
// tool that updates its records in /var/lib and its downloads in
// /var/cache, which the image has (with records in them), before the
// application starts. dpkg's records stay read-only.
func TestPackageManagerLikeState(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	a := startApp(t, ctx, harness.AppImage{
		Name:   "hardened.test/pkgtool-like:1",
		Config: v1.Config{Entrypoint: []string{"/docker-entrypoint.sh"}, Env: []string{"PATH=/usr/bin:/bin"}},
		Files: []harness.File{
			{Path: "var/lib", Dir: true},
			{Path: "var/lib/pkgtool", Dir: true},
			{Path: "var/lib/pkgtool/status", Data: "Package: base\nStatus: installed\n", Mode: 0o644},
			{Path: "var/lib/pkgtool/lists", Dir: true},
			{Path: "var/lib/dpkg", Dir: true},
			{Path: "var/lib/dpkg/status", Data: "Package: busybox\n", Mode: 0o644},
			{Path: "var/cache", Dir: true},
			{Path: "var/cache/pkgtool", Dir: true},
			{Path: "usr/bin", Dir: true},
			{Path: "usr/bin/pkgtool", Data: `#!/bin/sh
# update, then install: the lists, the download, the records
mkdir -p /var/lib/pkgtool/lists/partial /var/cache/pkgtool/archives/partial || exit 1
echo "Package: $2" > /var/lib/pkgtool/lists/main_Packages || exit 1
echo "$2.pkg" > /var/cache/pkgtool/archives/$2.pkg || exit 1
printf 'Package: %s\nStatus: installed\n' "$2" >> /var/lib/pkgtool/status || exit 1
grep -q "Package: base" /var/lib/pkgtool/status || { echo "the image's records are gone"; exit 1; }
echo "installed $2"
`},
			{Path: "docker-entrypoint.sh", Data: `#!/bin/sh
set -e
pkgtool install extra
echo ready
exec sleep 600
`},
		},
	})
	a.waitOutput(t, "ready")
	if !strings.Contains(a.out.String(), "installed extra") {
		t.Errorf("output %q", a.out.String())
	}
	a.checkHardened(t, ctx, "/usr/bin/pkgtool", "/var/lib/dpkg/status")
	if w := a.writablePaths(t); w["/var/lib/dpkg"] != nil || w["/var/lib/pkgtool"] == nil {
		t.Errorf("record: writable %v, want /var/lib/pkgtool and not /var/lib/dpkg", w)
	}
	a.stop(t, ctx)
}

// dbImage is a database: its data directory is a VOLUME, which the image
// has with a file in it; it fills it with 80 MiB at start.
var dbImage = harness.AppImage{
	Name: "hardened.test/db-like:1",
	Config: v1.Config{Entrypoint: []string{"/usr/bin/db"},
		Volumes: map[string]struct{}{"/var/lib/db/data": {}}},
	Files: []harness.File{
		{Path: "var/lib", Dir: true},
		{Path: "var/lib/db", Dir: true},
		{Path: "var/lib/db/data", Dir: true, Mode: 0o700},
		{Path: "var/lib/db/data/PG_VERSION", Data: "16\n", Mode: 0o600},
		{Path: "usr/bin", Dir: true},
		{Path: "usr/bin/db", Data: `#!/bin/sh
cd /var/lib/db/data || exit 1
test "$(cat PG_VERSION)" = 16 || { echo "no PG_VERSION from the image"; exit 1; }
dd if=/dev/zero of=base.dat bs=1M count=80 2>/dev/null || { echo "could not write 80 MiB"; exit 1; }
sync
echo ready
exec sleep 600
`},
	},
}

// TestDatabaseVolumeOnDisk: a database fills its declared VOLUME past the
// 64 MiB a tmpfs would hold; the volume is a directory on disk private to
// the container, owned by its user, that starts with the image's files
// there, and is gone once the container is deleted.
func TestDatabaseVolumeOnDisk(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	a := startApp(t, ctx, dbImage)
	a.waitOutput(t, "ready")
	if out := a.exec(t, ctx, "grep ' /var/lib/db/data ' /proc/mounts"); strings.HasPrefix(out, "tmpfs ") || out == "" {
		t.Errorf("the volume's mount: %q, want a directory on disk", out)
	}
	w := a.writablePaths(t)["/var/lib/db/data"]
	if w == nil || w["medium"] != "disk" {
		t.Fatalf("record: /var/lib/db/data = %v", w)
	}
	src := w["source"].(string)
	if !strings.HasPrefix(src, filepath.Join(cd.Root, "io.containerd.runtime.v2.task", ns, a.id)+"/") {
		t.Errorf("the volume is at %s, not in the task's working directory", src)
	}
	// Only root traverses to it (a set-user-id file a root container left
	// there must not be reachable by the node's other users).
	if fi, err := os.Stat(filepath.Dir(src)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the volumes' directory %s: %v %v, want mode 0700", filepath.Dir(src), fi.Mode(), err)
	}
	for name, size := range map[string]int64{"base.dat": 80 << 20, "PG_VERSION": 3} {
		fi, err := os.Lstat(filepath.Join(src, name))
		if err != nil {
			t.Errorf("on disk: %v", err)
			continue
		}
		owner := a.hostOwner(t, a.processUser(t))
		if st := fi.Sys().(*syscall.Stat_t); fi.Size() != size || st.Uid != owner || st.Gid != owner || st.Uid == 0 {
			t.Errorf("%s on disk: %d bytes, owner %d:%d; want %d bytes, %d:%d (the container's user on the host)", name, fi.Size(), st.Uid, st.Gid, size, owner, owner)
		}
	}
	a.checkHardened(t, ctx, "/usr/bin/db")
	a.stop(t, ctx)
	if _, err := a.task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("the volume is still on disk after delete: %v", err)
	}
}

// earlyExitImage fails at start as an application does on a read-only
// root: it makes a directory in its own tree, which the image has and no
// level makes writable.
var earlyExitImage = harness.AppImage{
	Name:   "hardened.test/early-exit:1",
	Config: v1.Config{Entrypoint: []string{"/opt/app/start.sh"}},
	Files: []harness.File{
		{Path: "opt", Dir: true},
		{Path: "opt/app", Dir: true},
		{Path: "opt/app/start.sh", Data: `#!/bin/sh
echo "starting"
mkdir /opt/app/cache || { echo "app: cannot create its cache directory" >&2; exit 3; }
exec sleep 600
`},
	},
}

// TestEarlyExitIsExplained: a container that fails on what the hardening
// took away exits with its own message; the shim explains it in
// containerd's log, in the record and in an event, with the knob.
func TestEarlyExitIsExplained(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	events, errs := cd.Client(t).Subscribe(ctx, `topic=="/hardened/early-exit"`)
	a := startApp(t, ctx, earlyExitImage)
	var st containerd.ExitStatus
	select {
	case st = <-a.exit:
	case <-ctx.Done():
		t.Fatal("the container did not exit")
	}
	if st.ExitCode() != 3 || !strings.Contains(a.out.String(), "Read-only file system") {
		t.Fatalf("exit %d, output %q: want the application's own failure", st.ExitCode(), a.out.String())
	}
	select {
	case ev := <-events:
		var s specs.Spec
		if err := json.Unmarshal(ev.Event.GetValue(), &s); err != nil || s.Annotations["hardened.dev/exit"] != "3" || !strings.HasSuffix(s.Annotations["hardened.dev/container"], "/"+a.id) {
			t.Errorf("event %s: %v %v", ev.Topic, s.Annotations, err)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no /hardened/early-exit event")
	}
	rec := a.record(t)
	x, _ := rec["earlyExit"].(map[string]any)
	msg, _ := x["message"].(string)
	// Root in a user namespace of its own where the kernel can idmap its
	// rootfs, 65534 where not.
	user := []string{"uid 65534", "user.namespace"}
	if rec["userNamespace"] != nil {
		user = []string{"uid 0 gid 0 in a user namespace of its own (host uids ", "capabilities.add"}
	}
	for _, want := range append(user, "exited 3", "read-only root", "/tmp tmpfs 64m", "rootfs.writablePaths", "rootfs.tmpfsSize") {
		if !strings.Contains(msg, want) {
			t.Errorf("record: earlyExit.message %q lacks %q", msg, want)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(cd.Log(), "exited 3 after") {
		if time.Now().After(deadline) {
			t.Fatal("no warning in containerd's log")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, line := range strings.Split(cd.Log(), "\n") {
		if strings.Contains(line, "exited 3 after") && (!strings.Contains(line, "level=warning") || !strings.Contains(line, a.id)) {
			t.Errorf("log line %q: want a warning naming the container", line)
		}
	}
}

// TestEarlyExitThroughCRI: for a Kubernetes container, the shim reads the
// end of the container's log (the CRI plugin's file), names the knob of
// the message it finds, and writes the explanation into the termination
// message file the kubelet bind-mounts (what `kubectl describe pod` shows
// as the last state's message).
func TestEarlyExitThroughCRI(t *testing.T) {
	require(t)
	harness.ImportApp(t, cd, harness.CRINamespace, earlyExitImage)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "early", false)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	// The kubelet's file: <kubelet root>/pods/<pod uid>/containers/<name>/<n>
	// (the test policy's kubelet root is the default).
	dir := filepath.Join(policy.DefaultKubeletRoot, "pods", podCfg.Metadata.Uid)
	for _, d := range []string{policy.DefaultKubeletRoot, filepath.Dir(dir)} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			t.Cleanup(func() { os.Remove(d) }) // after dir, if it is empty
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	msgFile := filepath.Join(dir, "containers", "app", "0a1b2c3d")
	if err := os.MkdirAll(filepath.Dir(msgFile), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msgFile, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg, Config: &runtime.ContainerConfig{
		Metadata:    &runtime.ContainerMetadata{Name: "app"},
		Image:       &runtime.ImageSpec{Image: earlyExitImage.Name},
		LogPath:     "app/0.log",
		Annotations: map[string]string{"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
		Mounts:      []*runtime.Mount{{ContainerPath: "/dev/termination-log", HostPath: msgFile}},
		Linux:       &runtime.LinuxContainerConfig{SecurityContext: kubeletDefaults(nil)},
	}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	for {
		st, err := rs.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: resp.ContainerId})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == runtime.ContainerState_CONTAINER_EXITED {
			if st.Status.ExitCode != 3 {
				t.Fatalf("exit %d", st.Status.ExitCode)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the container did not exit")
		case <-time.After(100 * time.Millisecond):
		}
	}
	msg, err := os.ReadFile(msgFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("termination message (kubectl describe pod: Last State: Terminated, Message):\n%s", msg)
	for _, want := range []string{"exited 3", "uid 65534", "Read-only file system", "rootfs.writablePaths"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("termination message %q lacks %q", msg, want)
		}
	}
	// Found in the log, the cause names its knob alone.
	if strings.Contains(string(msg), "rootfs.tmpfsSize") {
		t.Errorf("termination message %q names every knob: the log was not read", msg)
	}
}

// TestVolumesDirCrashAndOrphans: with the policy's volumesDir, volumes are
// <volumesDir>/<namespace>/<id>; a shim that dies with its container has
// them removed by `shim delete`, and directories that outlived their
// containers (a reboot) are removed at the next shim's first create.
func TestVolumesDirCrashAndOrphans(t *testing.T) {
	require(t)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	vols := filepath.Join(t.TempDir(), "volumes")
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte(testPolicy+"volumesDir: "+vols+"\n"), 0o644)
	c := harness.Start(t, harness.Options{ShimDir: shimDir, PolicyPath: policyFile})
	img := harness.ImportApp(t, c, ns, harness.AppImage{Name: "hardened.test/vol:1",
		Config: v1.Config{Volumes: map[string]struct{}{"/data": {}}, Cmd: []string{"sh", "-c", "echo x > /data/f && sleep 600"}}})
	// One the runtime made (marked for this containerd) before a reboot,
	// and one it did not make, which it must leave alone.
	orphan := filepath.Join(vols, ns, "gone-before-reboot", "data")
	os.MkdirAll(orphan, 0o755)
	os.WriteFile(filepath.Join(orphan, "old"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(orphan), shim.VolumesMark), []byte(filepath.Join(c.State, "io.containerd.runtime.v2.task")+"\n"), 0o600)
	foreign := filepath.Join(vols, ns, "not-ours", "data")
	os.MkdirAll(foreign, 0o755)

	ctx := namespaces.WithNamespace(t.Context(), ns)
	id := newID("vols")
	ctr, err := c.Client(t).NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Delete(context.Background(), containerd.WithProcessKill) })
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(vols, ns, id, "data", "f")
	waitFor(t, "the volume's file on disk", func() bool { _, err := os.Stat(file); return err == nil })
	waitFor(t, "the orphan's removal", func() bool { _, err := os.Stat(filepath.Dir(orphan)); return os.IsNotExist(err) })
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a directory the runtime did not make was removed: %v", err)
	}

	// The shim dies with its container: containerd runs `shim delete`.
	for _, pid := range c.ShimPIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(int(task.Pid()), syscall.SIGKILL)
	select {
	case <-exitCh:
	case <-time.After(60 * time.Second):
		t.Fatal("no exit after the shim died")
	}
	waitFor(t, "the volumes' removal after the shim died", func() bool { _, err := os.Stat(filepath.Join(vols, ns, id)); return os.IsNotExist(err) })
}

// TestDatabaseVolumeThroughCRI: in a pod, containerd's CRI plugin makes the
// VOLUME's directory (on disk, below its root) and fills it from the image
// with the image's owners; the shim gives it to the level's user, so the
// database writes its 80 MiB there.
func TestDatabaseVolumeThroughCRI(t *testing.T) {
	require(t)
	harness.ImportApp(t, cd, harness.CRINamespace, dbImage)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "db", false)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg, Config: &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: "db"},
		Image:    &runtime.ImageSpec{Image: dbImage.Name},
		LogPath:  "db/0.log",
		Linux:    &runtime.LinuxContainerConfig{SecurityContext: kubeletDefaults(nil)},
	}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	logFile := filepath.Join(podCfg.LogDirectory, "db", "0.log")
	for {
		data, _ := os.ReadFile(logFile)
		if strings.Contains(string(data), "ready") {
			break
		}
		st, err := rs.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: resp.ContainerId})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == runtime.ContainerState_CONTAINER_EXITED {
			t.Fatalf("the database exited %d: %s", st.Status.ExitCode, data)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the database did not start: %s", data)
		case <-time.After(100 * time.Millisecond):
		}
	}
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: resp.ContainerId, Cmd: []string{"sh", "-c", "id -u; ls -ln /var/lib/db/data; grep ' /var/lib/db/data ' /proc/mounts"}, Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	stdout := string(out.Stdout)
	if !strings.HasPrefix(stdout, "65534\n") || !strings.Contains(stdout, "83886080") || strings.Contains(stdout, "tmpfs /var/lib/db/data") {
		t.Errorf("in the pod: %s", stdout)
	}
}

// TestTaskRootfsIsTheSnapshots: a containerd client that creates a
// container of a non-root image (no user namespace, whose idmapped rootfs
// is bound to the snapshot anyway) declaring VOLUME /etc, then its task with a bind
// of the host's / as the rootfs, would have the runtime copy the host's
// /etc (shadow included) into a volume given to the container's user: the
// task's rootfs must be the container's snapshot, with or without a
// signatures policy.
func TestTaskRootfsIsTheSnapshots(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	image := harness.ImportApp(t, cd, ns, harness.AppImage{
		Name:   "hardened.test/volume-etc:1",
		Config: v1.Config{User: "1000", Cmd: []string{"cat", "/etc/shadow"}, Volumes: map[string]struct{}{"/etc": {}}},
	})
	c := cd.Client(t)
	id := newID("rootfs-bind")
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(image), containerd.WithNewSnapshot(id, image),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(image)))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO, containerd.WithRootFS([]mount.Mount{{Type: "bind", Source: "/", Options: []string{"rbind", "ro"}}}))
	if err == nil {
		task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		t.Fatal("a task with the host's / as its rootfs was created")
	}
	if !strings.Contains(err.Error(), "not those of the container's snapshot") {
		t.Errorf("NewTask = %v, want the refusal naming the snapshot", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(cd.Root, "io.containerd.runtime.v2.task", ns, id, "volumes", "*", "shadow")); len(entries) > 0 {
		t.Errorf("the host's /etc was copied: %v", entries)
	}
}
