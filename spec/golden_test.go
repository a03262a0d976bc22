package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is one fixture: testdata/<in>.in.json hardened under level
// with inputs gives testdata/<name>.golden.json.
type goldenCase struct {
	name, in, level string
	in2             Inputs
	// noFacts leaves out the fixture's fixtureFacts.
	noFacts bool
}

// noAppArmorHost is this build machine: no AppArmor, the port sysctl present.
var noAppArmorHost = Host{UnprivilegedPortSysctl: true}

// usernsHost is this build machine as the shim sees it: idmapped mounts too.
var usernsHost = Host{UnprivilegedPortSysctl: true, IDMappedMounts: true}

// Facts of the containers the CRI fixtures come from: the runtime's
// (containerd's root, state and socket; the kubelet's root) and the
// container's (its id, its pod's sandbox id and uid), matching the paths
// of their CRI mounts. The real-* ones are those of the test containerd
// (integration/harness) that TestCaptureFixtures ran.
const (
	criSandboxID     = "5f1c0a1e2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
	realDir          = "/tmp/hd-1473369126"
	realSandboxID    = "5a72488756b67c0d899f72e427e7690269a96cad2e929d60a85d8bcd8d58419e"
	realContainerID  = "18e02af8369edd7cef639b8b972546ddf40873c45e1d5c0ed8eb8d859124dd60"
	criContainerID   = "9a8b7c6d5e4f30211f2e3d4c5b6a79880f1e2d3c4b5a69788796a5b4c3d2e1f0"
	criPodUID        = "3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f"
	defaultStateRoot = "/run/containerd"
)

var (
	defaultLayout = Host{ContainerdRoot: "/var/lib/containerd", ContainerdState: defaultStateRoot, KubeletRoot: "/var/lib/kubelet",
		RuntimeSockets: []string{defaultStateRoot + "/containerd.sock", defaultStateRoot + "/containerd.sock.ttrpc"}}
	testLayout = Host{ContainerdRoot: realDir + "/root", ContainerdState: realDir + "/state",
		RuntimeSockets: []string{realDir + "/c.sock", realDir + "/c.sock.ttrpc"}}
	fixtureFacts = map[string]Inputs{
		"cri-container": {Host: defaultLayout, Container: ContainerInfo{ID: criContainerID, SandboxID: criSandboxID, PodUID: criPodUID,
			Bundle: defaultStateRoot + "/io.containerd.runtime.v2.task/k8s.io/" + criContainerID}},
		"cri-sandbox": {Host: defaultLayout, Container: ContainerInfo{ID: criSandboxID, SandboxID: criSandboxID, PodUID: criPodUID,
			Bundle: defaultStateRoot + "/io.containerd.runtime.v2.task/k8s.io/" + criSandboxID}},
		"real-cri-container": {Host: testLayout, Container: ContainerInfo{ID: realContainerID, SandboxID: realSandboxID, PodUID: "fixture-uid",
			Bundle: realDir + "/state/io.containerd.runtime.v2.task/k8s.io/" + realContainerID}},
		"real-cri-sandbox": {Host: testLayout, Container: ContainerInfo{ID: realSandboxID, SandboxID: realSandboxID, PodUID: "fixture-uid",
			Bundle: realDir + "/state/io.containerd.runtime.v2.task/k8s.io/" + realSandboxID}},
	}
)

// withFacts adds the runtime's and the container's facts of fixture to in.
func withFacts(fixture string, in Inputs) Inputs {
	f, ok := fixtureFacts[fixture]
	if !ok {
		return in
	}
	ns, userns := in.Container.Namespace, in.Container.UserNamespace
	in.Container = f.Container
	in.Container.UserNamespace = userns
	if in.Container.Namespace == "" {
		in.Container.Namespace = ns
	}
	in.Host.ContainerdRoot, in.Host.ContainerdState, in.Host.KubeletRoot = f.Host.ContainerdRoot, f.Host.ContainerdState, f.Host.KubeletRoot
	in.Host.RuntimeSockets = f.Host.RuntimeSockets
	return in
}

var goldenCases = []goldenCase{
	// ctr run (containerd's pkg/oci default spec): root, 14 caps, no
	// seccomp, read-write root.
	{name: "ctr-run.restricted", in: "ctr-run", level: "restricted", in2: Inputs{Host: noAppArmorHost}},
	{name: "ctr-run.baseline", in: "ctr-run", level: "baseline", in2: Inputs{Host: noAppArmorHost}},
	{name: "ctr-run.strict", in: "ctr-run", level: "strict", in2: Inputs{Host: noAppArmorHost}},
	{name: "ctr-run.restricted-apparmor-volumes", in: "ctr-run", level: "restricted",
		in2: Inputs{Host: Host{AppArmor: true, UnprivilegedPortSysctl: true}, Image: ImageInfo{Volumes: []string{"/data", "/var/lib/app/"}}}},
	// An image whose filesystem the runtime could read: its state paths
	// get copy-up, its VOLUMEs a directory on disk.
	{name: "ctr-run.restricted-image-state", in: "ctr-run", level: "restricted", in2: Inputs{Host: noAppArmorHost,
		Image:     ImageInfo{Volumes: []string{"/var/lib/postgresql/data"}, WorkingDir: "/app", Rootfs: stateImage},
		Container: ContainerInfo{ID: "demo", Namespace: "default", VolumeDir: "/var/lib/containerd/io.containerd.runtime.v2.task/default/demo/volumes"}}},
	{name: "ctr-run.strict-image-state", in: "ctr-run", level: "strict", in2: Inputs{Host: noAppArmorHost,
		Image:     ImageInfo{Volumes: []string{"/var/lib/postgresql/data"}, WorkingDir: "/app", Rootfs: stateImage},
		Container: ContainerInfo{ID: "demo", Namespace: "default", VolumeDir: "/var/lib/containerd/io.containerd.runtime.v2.task/default/demo/volumes"}}},
	// CRI (kubelet through containerd): a pod container with RuntimeDefault
	// seccomp and the pod's namespaces, and the pod sandbox (pause).
	{name: "cri-container.restricted", in: "cri-container", level: "restricted", in2: Inputs{Host: noAppArmorHost}},
	{name: "cri-container.strict-apparmor", in: "cri-container", level: "strict", in2: Inputs{Host: Host{AppArmor: true, UnprivilegedPortSysctl: true}}},
	{name: "cri-sandbox.restricted", in: "cri-sandbox", level: "restricted", in2: Inputs{Host: noAppArmorHost}},
	// A workload that is already careful keeps its own settings.
	{name: "nonroot-own-seccomp.restricted", in: "nonroot-own-seccomp", level: "restricted", in2: Inputs{Host: noAppArmorHost}},
	{name: "nonroot-own-seccomp.strict", in: "nonroot-own-seccomp", level: "strict", in2: Inputs{Host: noAppArmorHost}},
	// Captured from the real containerd v2.4.2 (integration TestCaptureFixtures):
	// `ctr run`, and a CNI-less (host network) CRI pod: its sandbox and container.
	{name: "real-ctr-run.restricted", in: "real-ctr-run", level: "restricted", in2: Inputs{Host: noAppArmorHost, Image: ImageInfo{Volumes: []string{"/data"}}}},
	{name: "real-cri-container.restricted", in: "real-cri-container", level: "restricted", in2: Inputs{Host: noAppArmorHost}},
	{name: "real-cri-container.host-network", in: "real-cri-container", level: "host-network", in2: Inputs{Host: noAppArmorHost}},
	{name: "real-cri-sandbox.host-network", in: "real-cri-sandbox", level: "host-network", in2: Inputs{Host: noAppArmorHost}},
	// Root in a user namespace of its own (user.namespace auto): the
	// runtime reserved a range and the kernel has idmapped mounts. ctr run
	// has a network namespace of its own (CAP_NET_RAW kept); the CRI
	// container joins its pod's network and IPC namespaces (sysfs becomes
	// the host's /sys read-only, no mqueue, no port sysctl of its own, no
	// CAP_NET_RAW); the sandbox keeps the host's user namespace.
	{name: "real-ctr-run.restricted-userns", in: "real-ctr-run", level: "restricted", in2: Inputs{Host: usernsHost, Image: ImageInfo{Volumes: []string{"/data"}}, Container: ContainerInfo{UserNamespace: testRange}}},
	{name: "cri-container.restricted-userns", in: "cri-container", level: "restricted", in2: Inputs{Host: usernsHost, Container: ContainerInfo{UserNamespace: testRange}}},
	{name: "real-cri-sandbox.host-network-userns", in: "real-cri-sandbox", level: "host-network", in2: Inputs{Host: usernsHost, Container: ContainerInfo{UserNamespace: testRange}}},
	// Without the facts nothing below containerd's root is the container's
	// own: its CRI files are refused (fail closed).
	{name: "real-cri-container.restricted-no-facts", in: "real-cri-container", level: "restricted", in2: Inputs{Host: noAppArmorHost}, noFacts: true},
}

// goldenResult is what a golden file holds.
type goldenResult struct {
	Level    string      `json:"level"`
	Error    string      `json:"error,omitempty"`
	Changes  []Change    `json:"changes"`
	Writable []Writable  `json:"writable,omitempty"`
	Spec     *specs.Spec `json:"spec,omitempty"`
}

func readSpec(t testing.TB, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".in.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s specs.Spec
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("testdata/%s.in.json: %v", name, err)
	}
	return &s
}

func level(t testing.TB, name string) *profiles.Level {
	t.Helper()
	l, ok := profiles.Builtin(name)
	if !ok {
		t.Fatalf("no built-in level %q", name)
	}
	return l
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, tc.in)
			inputs := tc.in2
			if !tc.noFacts {
				inputs = withFacts(tc.in, inputs)
			}
			res, err := Harden(s, testLevel(t, tc.level), inputs)
			got := goldenResult{Level: tc.level}
			var refused *RefusedError
			switch {
			case errors.As(err, &refused):
				got.Error = err.Error()
				got.Changes = res.Changes
			case err != nil:
				t.Fatalf("Harden(%s) = %v", tc.in, err)
			default:
				got.Changes, got.Writable, got.Spec = res.Changes, res.Writable, res.Spec
			}
			data, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, '\n')
			file := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(file, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(data)); diff != "" {
				t.Errorf("Harden(%s, %s) differs from %s (-want +got):\n%s", tc.in, tc.level, file, diff)
			}
		})
	}
}

// stateImage is an image with the usual state directories: nginx's cache,
// a database's /var/lib directory with a VOLUME below it, supervisord's
// log directory, dpkg's records, an application under /app with its
// uploads and logs, and a /var/run of its own.
var stateImage = fstest.MapFS{
	"app/app.sh":                   {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
	"app/uploads/.keep":            {Mode: 0o644},
	"app/logs":                     {Mode: fs.ModeDir | 0o755},
	"usr/bin/app":                  {Data: []byte("binary"), Mode: 0o755},
	"var/cache/nginx":              {Mode: fs.ModeDir | 0o755},
	"var/cache/apt/pkgcache.bin":   {Data: make([]byte, 100), Mode: 0o644},
	"var/lib/dpkg/status":          {Data: []byte("Package: x\n"), Mode: 0o644},
	"var/lib/postgresql/data":      {Mode: fs.ModeDir | 0o700},
	"var/lib/postgresql/.psqlrc":   {Mode: 0o644},
	"var/lib/big/blob":             {Data: make([]byte, 40<<20), Mode: 0o644},
	"var/log/supervisor":           {Mode: fs.ModeDir | 0o755},
	"var/log/dpkg.log":             {Data: []byte("log\n"), Mode: 0o644},
	"var/run/postgresql":           {Mode: fs.ModeDir | 0o2775},
	"var/spool/cron/crontabs/root": {Mode: 0o600},
	"tmp":                          {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
}
