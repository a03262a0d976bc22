package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

func device(p, typ string, major, minor int64) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: p, Type: typ, Major: major, Minor: minor})
	}
}

func num(n int64) *int64 { return &n }

func cgroupRule(allow bool, typ string, major, minor *int64, access string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access})
	}
}

func TestDeviceRules(t *testing.T) {
	host := Host{UnprivilegedPortSysctl: true}
	cases := []ruleCase{
		// Device nodes: by type and numbers, whatever the path.
		{name: "host disk at /dev/full", mutate: both(device("/dev/full", "b", 8, 0), cgroupRule(true, "b", num(8), num(0), "rwm")),
			refused: [2]string{"devices", "linux.devices[/dev/full]"}},
		{name: "host disk at /dev/full, node only", mutate: device("/dev/full", "b", 8, 0), refused: [2]string{"devices", "linux.devices[/dev/full]"}},
		{name: "kmsg", mutate: device("/dev/kmsg", "c", 1, 11), refused: [2]string{"devices", "linux.devices[/dev/kmsg]"}},
		{name: "mem at an innocent path", mutate: device("/dev/null", "c", 1, 1), refused: [2]string{"devices", "linux.devices[/dev/null]"}},
		{name: "fifo", mutate: device("/dev/fifo", "p", 0, 0), refused: [2]string{"devices", "linux.devices[/dev/fifo]"}},
		{name: "wildcard minor node", mutate: device("/dev/pts/x", "c", 136, -1), refused: [2]string{"devices", "linux.devices[/dev/pts/x]"}},
		{name: "null's numbers at another path", mutate: device("/dev/sda", "c", 1, 3)},
		{name: "unbuffered null", mutate: device("/dev/null", "u", 1, 3)},
		{name: "standard pts", mutate: device("/dev/pts/0", "c", 136, 0)},
		{name: "fuse allowed by the level", level: "fuse", mutate: both(device("/dev/fuse", "c", 10, 229), cgroupRule(true, "c", num(10), num(229), "rwm"))},
		{name: "fuse's numbers elsewhere", level: "fuse", mutate: device("/opt/f", "c", 10, 229)},
		{name: "fuse without the level", mutate: device("/dev/fuse", "c", 10, 229), refused: [2]string{"devices", "linux.devices[/dev/fuse]"}},
		{name: "another misc device under the fuse level", level: "fuse", mutate: device("/dev/fuse", "c", 10, 232), refused: [2]string{"devices", "linux.devices[/dev/fuse]"}},
		// Device cgroup rules: allow only those same devices.
		{name: "cgroup allow all", mutate: cgroupRule(true, "a", nil, nil, "rwm"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup allow all, no type", mutate: func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}, refused: [2]string{"devices", "linux.resources.devices[0]"}},
		{name: "cgroup allow every block device", mutate: cgroupRule(true, "b", nil, nil, "rw"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup allow major -1", mutate: cgroupRule(true, "c", num(-1), num(3), "rw"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup allow a host disk", mutate: cgroupRule(true, "b", num(8), num(0), "rwm"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup allow every minor of misc", level: "fuse", mutate: cgroupRule(true, "c", num(10), nil, "rwm"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup minor -1 is every minor", level: "fuse", mutate: cgroupRule(true, "c", num(10), num(-1), "rwm"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup allow tun", mutate: cgroupRule(true, "c", num(10), num(200), "rwm"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup odd access", mutate: cgroupRule(true, "c", num(1), num(3), "rwx"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup odd type", mutate: cgroupRule(true, "u", num(1), num(3), "rw"), refused: [2]string{"devices", "linux.resources.devices[10]"}},
		{name: "cgroup pts every minor", mutate: cgroupRule(true, "c", num(136), nil, "rwm")},
		{name: "cgroup null", mutate: cgroupRule(true, "c", num(1), num(3), "r")},
		{name: "cgroup deny anything", mutate: cgroupRule(false, "b", nil, nil, "rwm")},
		{name: "cgroup without deny all", mutate: func(s *specs.Spec) { s.Linux.Resources = nil }, changed: [2]string{"devices", "linux.resources.devices[0]"}},
		{name: "cgroup deny all not first", mutate: func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rwm"}, {Allow: false, Access: "rwm"}}
		}, changed: [2]string{"devices", "linux.resources.devices[0]"}},
	}
	runRuleCases(t, host, cases)
}

func TestDeviceRuleViolations(t *testing.T) {
	restricted := testLevel(t, "restricted")
	fuse := testLevel(t, "fuse")
	for _, tc := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		level *profiles.Level
		want  []string // fields
	}{
		{"none", nil, restricted, nil},
		{"deny all", []specs.LinuxDeviceCgroup{{Access: "rwm"}}, restricted, nil},
		{"standard", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: num(1), Minor: num(5), Access: "rwm"}}, restricted, nil},
		{"disk and all", []specs.LinuxDeviceCgroup{{Access: "rwm"}, {Allow: true, Type: "b", Major: num(8), Minor: num(0), Access: "rw"}, {Allow: true, Access: "rwm"}},
			restricted, []string{"linux.resources.devices[1]", "linux.resources.devices[2]"}},
		{"fuse under restricted", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: num(10), Minor: num(229), Access: "rw"}}, restricted, []string{"linux.resources.devices[0]"}},
		{"fuse under fuse", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: num(10), Minor: num(229), Access: "rw"}}, fuse, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := DeviceRuleViolations(tc.rules, tc.level)
			var got []string
			for _, v := range vs {
				if v.Rule != "devices" || !v.Refused || v.Fix == "" || v.Reason == "" {
					t.Errorf("violation %+v: want a refusal by rule devices with a reason and a fix", v)
				}
				got = append(got, v.Field)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("DeviceRuleViolations = %v, want %v", vs, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("DeviceRuleViolations = %v, want fields %v", got, tc.want)
				}
			}
		})
	}
}
