package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// FuzzHarden feeds config.json documents (seeded with the fixtures) to
// Harden and Check under every built-in level. Invariants: no panic; the
// result passes Check unless it was refused; hardening is idempotent.
func FuzzHarden(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.in.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
	}
	f.Add([]byte(`{"process":{"args":["sh"]},"root":{"path":"rootfs"}}`), uint8(1))
	f.Add([]byte(`{"process":{"user":{"uid":0},"capabilities":null},"root":{"path":"r"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}`), uint8(2))
	f.Add([]byte(`{"process":{"args":["sh"]},"root":{"path":"r"},"mounts":[{"destination":"/d","type":"ext4","source":"/dev/vda"},`+
		`{"destination":"/e","type":"bind","source":"../../../../etc","options":["rbind"]},`+
		`{"destination":"/v","type":"bind","source":"`+realDir+`/root/io.containerd.grpc.v1.cri/containers/`+realContainerID+`/volumes/x","options":["rbind","idmap"],"uidMappings":[{"containerID":0,"hostID":0,"size":1}]},`+
		`{"destination":"/proc/sys","type":"tmpfs","source":"tmpfs","options":["size=1m","suid","rshared"]}],`+
		`"linux":{"devices":[{"path":"/dev/full","type":"b","major":8,"minor":0}],"resources":{"devices":[{"allow":true,"type":"b","major":8,"minor":0,"access":"rwm"}]}}}`), uint8(16|32))
	f.Add([]byte(`{"process":{"oomScoreAdj":-1000,"scheduler":{"policy":"SCHED_OTHER","nice":3},"rlimits":[{"type":"RLIMIT_MEMLOCK","hard":65536,"soft":65536}]},"root":{"path":"rootfs"},"hooks":{"prestart":[]},"linux":{"cgroupsPath":"/default/x","resources":{"pids":{"limit":-1},"unified":{"memory.high":"1"}},"netDevices":{}}}`), uint8(3))
	levels := profiles.BuiltinNames()
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		dec := json.NewDecoder(bytes.NewReader(data))
		var s specs.Spec
		if err := dec.Decode(&s); err != nil {
			return
		}
		l, _ := profiles.Builtin(levels[int(which)%len(levels)])
		in := Inputs{Host: Host{UnprivilegedPortSysctl: which&4 != 0, AppArmor: which&8 != 0}, Image: ImageInfo{Volumes: []string{"/data"}}}
		if which&16 != 0 {
			// The test containerd's layout and a CRI container's facts.
			in = withFacts("real-cri-container", in)
		}
		if which&32 != 0 {
			in.Host.ResolvePath = func(p string) string { return strings.Replace(p, "/srv/link", "/run/containerd", 1) }
		}
		res, err := Harden(&s, l, in)
		if _, cerr := Check(&s, l, in); (cerr == nil) != (err == nil || isRefusal(err)) {
			t.Fatalf("Harden error %v but Check error %v", err, cerr)
		}
		if err != nil {
			if !isRefusal(err) && !strings.HasPrefix(err.Error(), "harden: ") {
				t.Fatalf("Harden error %q does not say where it comes from", err)
			}
			return
		}
		vs, err := Check(res.Spec, l, in)
		if err != nil || len(vs) > 0 {
			t.Fatalf("Check(Harden(s)) = %v, %v", vs, err)
		}
		again, err := Harden(res.Spec, l, in)
		if err != nil {
			t.Fatalf("Harden(Harden(s)) = %v", err)
		}
		if diff := cmp.Diff(res.Spec, again.Spec); diff != "" {
			t.Fatalf("Harden is not idempotent:\n%s", diff)
		}
	})
}

func isRefusal(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
