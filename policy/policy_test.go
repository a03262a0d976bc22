package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	return p
}

func TestExample(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "testdata/example.yaml" || len(p.Hash) != 64 {
		t.Errorf("source %q hash %q", p.Source, p.Hash)
	}
	web, ok := p.Level("web")
	if !ok || web.Rootfs.WritablePaths[0] != "/var/cache/nginx" || !web.Rootfs.ReadOnly || !web.User.RunAsNonRoot || web.Limits.Pids != 4096 {
		t.Errorf("level web = %+v: want restricted plus a writable path", web)
	}
	ws, _ := p.Level("web-strict")
	if ws.Seccomp.Profile != "strict" || ws.Rootfs.WritablePaths[0] != "/var/cache/nginx" || ws.Name != "web-strict" {
		t.Errorf("level web-strict = %+v", ws)
	}
	if got := strings.Join(p.LevelNames(), ","); got != "baseline,restricted,strict,web,web-strict" {
		t.Errorf("LevelNames = %s", got)
	}
	for _, tc := range []struct {
		w                 Workload
		level, rule, mode string
	}{
		{Workload{KubernetesNamespace: "kube-system", ContainerdNamespace: "k8s.io"}, "baseline", "rules[0] (system pods)", "audit"},
		{Workload{KubernetesNamespace: "kube-system", ContainerdNamespace: "default"}, "restricted", "defaultLevel", "enforce"},
		{Workload{Image: "registry.example.com/web/shop/front:1.2"}, "web", "rules[1] (web)", "enforce"},
		{Workload{Image: "registry.example.com/web:1.2"}, "restricted", "defaultLevel", "enforce"},
		{Workload{Image: "docker.io/library/nginx:1.27"}, "web", "rules[1] (web)", "enforce"},
		{Workload{Image: "docker.io/library/nginx@sha256:abcd"}, "web", "rules[1] (web)", "enforce"},
		{Workload{Image: "docker.io/library/redis:7"}, "restricted", "defaultLevel", "enforce"},
		{Workload{KubernetesNamespace: "kube-system", ContainerdNamespace: "k8s.io", Annotations: map[string]string{LevelAnnotation: "strict"}}, "strict", "rules[0] (system pods)", "audit"},
		{Workload{Annotations: map[string]string{LevelAnnotation: "strict"}}, "strict", "defaultLevel", "enforce"},
		{Workload{Annotations: map[string]string{LevelAnnotation: "restricted"}}, "restricted", "defaultLevel", "enforce"},
	} {
		d, err := p.Resolve(tc.w)
		if err != nil {
			t.Errorf("Resolve(%+v) = %v", tc.w, err)
			continue
		}
		if d.Level.Name != tc.level || d.Rule != tc.rule || string(d.Mode) != tc.mode || d.Reason == "" {
			t.Errorf("Resolve(%+v) = %s %s %s (%s), want %s %s %s", tc.w, d.Level.Name, d.Rule, d.Mode, d.Reason, tc.level, tc.rule, tc.mode)
		}
	}
}

func TestAnnotations(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: legacy
    match: {kubernetesNamespaces: [legacy-*]}
    level: restricted
    allowAnnotationLevels: [baseline]
`)
	d, err := p.Resolve(Workload{KubernetesNamespace: "legacy-app", Annotations: map[string]string{LevelAnnotation: "baseline"}})
	if err != nil || d.Level.Name != "baseline" || !strings.Contains(d.Reason, "annotation") {
		t.Errorf("allowed annotation: %v %+v", err, d)
	}
	for _, tc := range []struct {
		w    Workload
		want string
	}{
		{Workload{KubernetesNamespace: "shop", Annotations: map[string]string{LevelAnnotation: "baseline"}}, "may not replace level restricted"},
		{Workload{KubernetesNamespace: "legacy-app", Annotations: map[string]string{LevelAnnotation: "root-please"}}, `unknown level`},
	} {
		if _, err := p.Resolve(tc.w); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), LevelAnnotation) {
			t.Errorf("Resolve(%+v) = %v, want an error containing %q", tc.w, err, tc.want)
		}
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if d.Mode != Enforce || d.DefaultLevel != "restricted" || d.Hash == "" {
		t.Errorf("Default() = %+v", d)
	}
	dec, err := d.Resolve(Workload{ContainerdNamespace: "default"})
	if err != nil || dec.Level.Name != "restricted" || dec.Mode != Enforce {
		t.Errorf("Default().Resolve = %+v %v", dec, err)
	}
	p, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err != nil || !strings.Contains(p.Source, "built-in default (no ") {
		t.Errorf("Load(missing) = %+v %v", p, err)
	}
	empty := mustParse(t, "")
	if empty.Mode != Enforce || empty.DefaultLevel != "restricted" {
		t.Errorf("Parse(empty) = %+v", empty)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "policy "+dir) {
		t.Errorf("Load(dir) = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mode: enforce\nmodes: audit\n"), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load(bad) = %v", err)
	}
	if os.Getuid() != 0 {
		unreadable := filepath.Join(dir, "secret.yaml")
		os.WriteFile(unreadable, []byte("mode: enforce\n"), 0o000)
		if _, err := Load(unreadable); err == nil {
			t.Error("Load(unreadable) = nil error")
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top-level key", "mode: enforce\ndefaultlevel: baseline\n", "line 2: field defaultlevel not found"},
		{"unknown key in a level", "levels:\n  x:\n    extends: baseline\n    rootfs:\n      readonly: true\n", "line 5: field readonly not found"},
		{"unknown key in a rule", "rules:\n  - name: a\n    match: {images: [x]}\n    level: baseline\n    lvl: strict\n", "line 5: field lvl not found"},
		{"unknown match key", "rules:\n  - name: a\n    match: {namespaces: [x]}\n    level: baseline\n", "field namespaces not found"},
		{"bad mode", "mode: enforcing\n", `mode: "enforcing" is not one of enforce, audit`},
		{"unknown default", "defaultLevel: lax\n", `defaultLevel: unknown level "lax" (known: baseline, restricted, strict)`},
		{"empty match", "rules:\n  - name: all\n    match: {}\n    level: baseline\n", "rules[0].match: empty"},
		{"no rule name", "rules:\n  - match: {images: [x]}\n    level: baseline\n", "rules[0].name: must not be empty"},
		{"duplicate rule", "rules:\n  - {name: a, match: {images: [x]}, level: baseline}\n  - {name: a, match: {images: [y]}, level: baseline}\n", `rules[1].name: "a" is also the name of rules[0]`},
		{"bad glob", "rules:\n  - {name: a, match: {images: [\"[x\"]}, level: baseline}\n", "rules[0].match.images: \"[x\" is not a valid glob"},
		{"unknown rule level", "rules:\n  - {name: a, match: {images: [x]}, level: nope}\n", `rules[0].level: unknown level "nope"`},
		{"bad rule mode", "rules:\n  - {name: a, match: {images: [x]}, level: baseline, mode: warn}\n", `rules[0].mode: "warn"`},
		{"unknown annotation level", "rules:\n  - {name: a, match: {images: [x]}, level: baseline, allowAnnotationLevels: [root]}\n", `rules[0].allowAnnotationLevels: unknown level "root"`},
		{"redefined built-in", "levels:\n  restricted:\n    description: mine\n", "levels.restricted: redefines a built-in level"},
		{"unknown extends", "levels:\n  a:\n    extends: nope\n", `levels.a.extends: unknown level "nope"`},
		{"cycle", "levels:\n  a:\n    extends: b\n  b:\n    extends: a\n", "extend each other in a cycle"},
		{"invalid level", "levels:\n  a:\n    extends: restricted\n    capabilities:\n      allow: [SYS_ADMIN]\n", `levels.a: level "a": capabilities.allow: "SYS_ADMIN" is not a capability`},
		{"level not a mapping", "levels:\n  a: [1]\n", "line 2"},
		{"not yaml", "mode: [\n", "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	_, err := Parse([]byte("mode: x\ndefaultLevel: y\nrules:\n  - {name: a, match: {}, level: z}\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"mode:", "defaultLevel:", "rules[0].match", "rules[0].level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestLevelWithoutExtends(t *testing.T) {
	p := mustParse(t, "levels:\n  bare:\n    description: nothing but defaults\n")
	l, _ := p.Level("bare")
	if l.User.RunAsNonRoot || l.Seccomp.Profile != "runtime-default" || l.Name != "bare" {
		t.Errorf("bare level = %+v", l)
	}
	// An annotation may not select a policy-defined level unless allowed.
	if _, err := p.Resolve(Workload{Annotations: map[string]string{LevelAnnotation: "bare"}}); err == nil {
		t.Error("annotation selected a policy level without allowAnnotationLevels")
	}
}

func TestGlobs(t *testing.T) {
	for _, tc := range []struct {
		glob, value string
		want        bool
	}{
		{"kube-*", "kube-system", true}, {"kube-*", "", false}, {"a/**", "a/b/c", true}, {"a/**", "a", false},
		{"a/**", "ab/c", false}, {"reg.io/*/app", "reg.io/team/app", true}, {"reg.io/*/app", "reg.io/a/b/app", false},
	} {
		if got := globMatch(tc.glob, tc.value); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.glob, tc.value, got, tc.want)
		}
	}
	if !imageMatch("library/nginx", "docker.io/library/nginx:1") || !imageMatch("nginx:1", "docker.io/library/nginx:1") || imageMatch("nginx", "quay.io/nginx:1") {
		t.Error("imageMatch normalisation")
	}
}

func TestKubeletRoot(t *testing.T) {
	if p := Default(); p.KubeletRoot != DefaultKubeletRoot {
		t.Errorf("Default().KubeletRoot = %q", p.KubeletRoot)
	}
	p, err := Parse([]byte("mode: enforce\n"))
	if err != nil || p.KubeletRoot != "/var/lib/kubelet" {
		t.Fatalf("Parse without kubeletRoot = %q, %v", p.KubeletRoot, err)
	}
	p, err = Parse([]byte("kubeletRoot: /data/kubelet\n"))
	if err != nil || p.KubeletRoot != "/data/kubelet" {
		t.Errorf("Parse(kubeletRoot: /data/kubelet) = %q, %v", p.KubeletRoot, err)
	}
	for _, bad := range []string{"kubelet", "/", "/var/lib/../kubelet"} {
		if _, err := Parse([]byte("kubeletRoot: " + bad + "\n")); err == nil || !strings.Contains(err.Error(), "kubeletRoot") {
			t.Errorf("kubeletRoot %q: %v, want an error naming the key", bad, err)
		}
	}
}
