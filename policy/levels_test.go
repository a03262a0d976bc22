package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/hardened-runtime/hardened/profiles"
)

// baselineCaps is the built-in baseline level's capabilities.allow.
func baselineCaps(t *testing.T) []string {
	t.Helper()
	b, _ := profiles.Builtin(profiles.Baseline)
	if len(b.Capabilities.Allow) < 2 {
		t.Fatalf("baseline allows %v: the tests need a few", b.Capabilities.Allow)
	}
	return b.Capabilities.Allow
}

func TestCapabilitiesOfExtendingLevels(t *testing.T) {
	base := baselineCaps(t)
	for _, tc := range []struct {
		name, level string
		want        []string
	}{
		{"add keeps the base's", "extends: baseline\ncapabilities:\n  add: [CAP_NET_RAW]\n",
			append(slices.Clone(base), "CAP_NET_RAW")},
		{"add of one the base has", "extends: baseline\ncapabilities:\n  add: [" + base[0] + "]\n", base},
		{"drop", "extends: baseline\ncapabilities:\n  drop: [" + base[0] + "]\n", base[1:]},
		{"add and drop", "extends: baseline\ncapabilities:\n  add: [CAP_NET_RAW]\n  drop: [" + base[0] + "]\n",
			append(slices.Clone(base[1:]), "CAP_NET_RAW")},
		{"a narrowing allow means what it says", "extends: baseline\ncapabilities:\n  allow: [" + base[1] + "]\n", []string{base[1]}},
		{"an empty allow", "extends: baseline\ncapabilities:\n  allow: []\n", []string{}},
		{"a widening allow lists the base's", "extends: baseline\ncapabilities:\n  allow: [" + strings.Join(base, ", ") + ", CAP_NET_RAW]\n",
			append(slices.Clone(base), "CAP_NET_RAW")},
		{"allow, then add", "extends: baseline\ncapabilities:\n  allow: [" + base[1] + "]\n  add: [" + base[0] + "]\n", []string{base[1], base[0]}},
		{"other keys keep the base's list", "extends: baseline\nseccomp:\n  profile: strict\n", base},
		{"a level of its own adds to nothing", "capabilities:\n  add: [CAP_KILL]\n", []string{"CAP_KILL"}},
		{"an extending level of an extending level", "extends: mid\ncapabilities:\n  add: [CAP_SYS_CHROOT]\n",
			append(slices.Clone(base), "CAP_NET_RAW", "CAP_SYS_CHROOT")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "levels:\n  mid:\n    extends: baseline\n    capabilities:\n      add: [CAP_NET_RAW]\n  x:\n" + indent(tc.level, "    ")
			p := mustParse(t, text)
			l, _ := p.Level("x")
			if !slices.Equal(l.Capabilities.Allow, tc.want) || l.Capabilities.Add != nil || l.Capabilities.Drop != nil {
				t.Errorf("level x capabilities = %+v, want allow %v and no add/drop left", l.Capabilities, tc.want)
			}
			// The base level is untouched.
			if b, _ := p.Level("baseline"); !slices.Equal(b.Capabilities.Allow, base) {
				t.Errorf("baseline's allow became %v", b.Capabilities.Allow)
			}
		})
	}
}

// An allow that adds capabilities and leaves out some of the base's is
// what an admin writes to add one (and silently loses the others): it is an
// error that names both and the key that adds.
func TestReplacingAllowIsAnError(t *testing.T) {
	base := baselineCaps(t)
	_, err := Parse([]byte("levels:\n  web:\n    extends: baseline\n    capabilities:\n      allow: [CAP_NET_RAW]\n"))
	if err == nil {
		t.Fatal("Parse accepted an allow that replaces baseline's list")
	}
	msg := err.Error()
	for _, want := range []string{"levels.web.capabilities.allow", "adds CAP_NET_RAW", "leaves out " + base[0], "capabilities.add: [CAP_NET_RAW]", "capabilities.drop"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
	// Adding and dropping the same capability is an error too.
	if _, err := Parse([]byte("levels:\n  web:\n    extends: baseline\n    capabilities:\n      add: [CAP_NET_RAW]\n      drop: [CAP_NET_RAW]\n")); err == nil || !strings.Contains(err.Error(), "both added and dropped") {
		t.Errorf("add and drop of one capability: %v", err)
	}
	if _, err := Parse([]byte("levels:\n  web:\n    extends: baseline\n    capabilities:\n      drop: [NET_RAW]\n")); err == nil || !strings.Contains(err.Error(), "capabilities.drop") {
		t.Errorf("drop of a bad name: %v", err)
	}
}

func TestVolumesOfExtendingLevels(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  profiles.VolumeMode
	}{
		{"extends: restricted\n", profiles.VolumesDisk},
		// The older key keeps its meaning in a level that extends a
		// built-in level whose volumes are on disk now.
		{"extends: restricted\nrootfs:\n  volumesAsTmpfs: true\n", profiles.VolumesTmpfs},
		{"extends: restricted\nrootfs:\n  volumesAsTmpfs: false\n", profiles.VolumesNone},
		{"extends: restricted\nrootfs:\n  volumes: tmpfs\n", profiles.VolumesTmpfs},
		{"rootfs:\n  readOnly: true\n", profiles.VolumesNone},
		{"rootfs:\n  volumesAsTmpfs: true\n", profiles.VolumesTmpfs},
	} {
		p := mustParse(t, "levels:\n  x:\n"+indent(tc.level, "    "))
		l, _ := p.Level("x")
		if l.Rootfs.Volumes != tc.want || l.Rootfs.VolumesAsTmpfs {
			t.Errorf("level %q: volumes %q (volumesAsTmpfs %v), want %q", tc.level, l.Rootfs.Volumes, l.Rootfs.VolumesAsTmpfs, tc.want)
		}
	}
	for _, bad := range []string{
		"rootfs:\n  volumes: ram\n",
		"extends: restricted\nrootfs:\n  volumes: disk\n  volumesAsTmpfs: true\n",
	} {
		if _, err := Parse([]byte("levels:\n  x:\n" + indent(bad, "    "))); err == nil || !strings.Contains(err.Error(), "rootfs.volumes") {
			t.Errorf("level %q: %v, want an error about rootfs.volumes", bad, err)
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestVolumesDir(t *testing.T) {
	if p := mustParse(t, "volumesDir: /var/lib/hardened/volumes\n"); p.VolumesDir != "/var/lib/hardened/volumes" {
		t.Errorf("volumesDir = %q", p.VolumesDir)
	}
	if p := mustParse(t, ""); p.VolumesDir != "" {
		t.Errorf("default volumesDir = %q, want \"\" (containerd's working directory of each task)", p.VolumesDir)
	}
	for _, bad := range []string{"relative", "/", "/var/lib/../etc", "/etc/volumes", "/var/lib/kubelet/x", "/var"} {
		if _, err := Parse([]byte("volumesDir: " + bad + "\n")); err == nil || !strings.Contains(err.Error(), "volumesDir") {
			t.Errorf("volumesDir %s: %v, want an error", bad, err)
		}
	}
}
