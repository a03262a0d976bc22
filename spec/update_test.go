package spec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCheckUpdate(t *testing.T) {
	l := level(t, "restricted")
	created, err := Harden(readSpec(t, "ctr-run"), l, Inputs{Host: noAppArmorHost})
	if err != nil {
		t.Fatal(err)
	}
	container := created.Spec
	// What containerd's CRI sends for UpdateContainerResources (in-place
	// resize): the stored spec's resources with the new cpu and memory.
	cri := func() *specs.LinuxResources {
		r := deepCopy(readSpec(t, "cri-container").Linux.Resources)
		r.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}
		r.Memory = &specs.LinuxMemory{Limit: ptr(int64(256 << 20))}
		r.Unified = map[string]string{"memory.high": "200000000"}
		return r
	}
	for _, tc := range []struct {
		name string
		res  *specs.LinuxResources
		want [3]string // rule, field, value; empty: allowed
	}{
		{"nothing", nil, [3]string{}},
		{"cri resize", cri(), [3]string{}},
		{"ctr memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 30)), Swap: ptr(int64(-1))}}, [3]string{}},
		{"pids lower", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(100))}}, [3]string{}},
		{"pids unlimited", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}, [3]string{"limits", "linux.resources.pids.limit", "-1"}},
		{"pids above", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(4097))}}, [3]string{"limits", "linux.resources.pids.limit", "4097"}},
		{"unified pids unlimited", &specs.LinuxResources{Unified: map[string]string{"pids.max": "max"}}, [3]string{"resources", "linux.resources.unified[pids.max]", "max"}},
		{"unified cgroup kill", &specs.LinuxResources{Unified: map[string]string{"cgroup.kill": "1"}}, [3]string{"resources", "linux.resources.unified[cgroup.kill]", "1"}},
		{"cpu realtime", &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(-1))}}, [3]string{"resources", "linux.resources.cpu.realtimeRuntime", "-1"}},
		{"oom killer", &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(true)}}, [3]string{"resources", "linux.resources.memory.disableOOMKiller", "true"}},
		{"net_cls", &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(0x100001))}}, [3]string{"fields", "linux.resources.network", "1048577"}},
		{"block device", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: ptr(int64(8)), Minor: ptr(int64(0)), Access: "rwm"}}},
			[3]string{"devices", "linux.resources.devices[0]", "allow b 8:0 rwm"}},
		{"all devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}, [3]string{"devices", "linux.resources.devices[0]", "allow a *:* rwm"}},
		{"deny devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}, [3]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := CheckUpdate(container, tc.res, l)
			if tc.want[0] == "" {
				if len(vs) > 0 {
					t.Errorf("CheckUpdate = %v, want none", vs)
				}
				return
			}
			if !slices.ContainsFunc(vs, func(v Violation) bool {
				return v.Refused && v.Rule == tc.want[0] && v.Field == tc.want[1] && strings.Contains(v.Value, tc.want[2]) && v.Fix != ""
			}) {
				t.Errorf("CheckUpdate = %v, want %s refused by rule %s with value %q", vs, tc.want[1], tc.want[0], tc.want[2])
			}
		})
	}
	// A device the container was created with (its level allows it) may be
	// in the rules of an update.
	fuse := testLevel(t, "fuse")
	s := readSpec(t, "ctr-run")
	s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229})
	withFuse, err := Harden(s, fuse, Inputs{Host: noAppArmorHost})
	if err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "rwm"}}}
	if vs := CheckUpdate(withFuse.Spec, r, fuse); len(vs) > 0 {
		t.Errorf("CheckUpdate(the container's own /dev/fuse) = %v", vs)
	}
	if vs := CheckUpdate(container, r, l); len(vs) == 0 {
		t.Error("CheckUpdate allowed /dev/fuse to a container created without it")
	}
	if vs := CheckUpdate(container, r, nil); len(vs) != 1 || !vs[0].Refused {
		t.Errorf("CheckUpdate without a level = %v, want one refusal", vs)
	}
	// The input is not changed.
	in := cri()
	before := deepCopy(in)
	CheckUpdate(container, in, l)
	if !slices.EqualFunc(in.Devices, before.Devices, func(a, b specs.LinuxDeviceCgroup) bool { return a.Allow == b.Allow && a.Access == b.Access }) {
		t.Error("CheckUpdate changed its input")
	}
}

func TestCheckRestore(t *testing.T) {
	if vs := CheckRestore("", level(t, "restricted")); len(vs) != 0 {
		t.Errorf("CheckRestore(no checkpoint) = %v", vs)
	}
	for _, ln := range []string{"baseline", "restricted", "strict"} {
		vs := CheckRestore("/var/lib/checkpoints/c1", level(t, ln))
		if len(vs) != 1 || vs[0].Rule != "checkpoint" || vs[0].Value != "/var/lib/checkpoints/c1" || !strings.Contains(vs[0].Fix, "checkpoint.allowRestore") {
			t.Errorf("CheckRestore under %s = %v, want a refusal naming checkpoint.allowRestore", ln, vs)
		}
	}
	if vs := CheckRestore("/c", testLevel(t, "restore")); len(vs) != 0 {
		t.Errorf("CheckRestore with allowRestore = %v", vs)
	}
	if vs := CheckRestore("/c", nil); len(vs) != 1 {
		t.Errorf("CheckRestore without a level = %v", vs)
	}
}
