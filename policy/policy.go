package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hardened-runtime/hardened/profiles"
)

// Mode says whether violations are fixed or only recorded.
type Mode string

const (
	// Enforce hardens the spec and refuses what the level refuses.
	Enforce Mode = "enforce"
	// Audit records the violations and changes nothing.
	Audit Mode = "audit"
)

// DefaultPath is where the shim looks for the policy file.
const DefaultPath = "/etc/hardened/policy.yaml"

// MarkerPath records that a node policy was configured on this node:
// `hardenctl install` writes it with the policy, the shim the first time
// it reads a policy from DefaultPath. While it exists a missing
// DefaultPath refuses every container instead of falling back to the
// built-in default. It lives outside /etc/hardened, so that removing the
// policy's directory does not remove it.
const MarkerPath = "/var/lib/hardened/policy-configured"

// MarkerContent is what MarkerPath holds.
const MarkerContent = "A node policy was configured on this node: while " + DefaultPath + " is missing the hardened runtime refuses every container.\nRemove this file to use the built-in default policy instead.\n"

// DefaultKubeletRoot is the kubelet's default --root-dir.
const DefaultKubeletRoot = "/var/lib/kubelet"

// LevelAnnotation is the workload annotation that selects a level.
const LevelAnnotation = "hardened.dev/level"

// Policy is the parsed node policy.
type Policy struct {
	// Mode is enforce (default) or audit.
	Mode Mode `yaml:"mode" json:"mode"`
	// DefaultLevel applies when no rule matches. Default restricted.
	DefaultLevel string `yaml:"defaultLevel" json:"defaultLevel"`
	// Levels are the policy's own levels, by name.
	Levels map[string]yaml.Node `yaml:"levels" json:"-"`
	// Rules pick a level per workload; the first match wins.
	Rules []Rule `yaml:"rules" json:"rules,omitempty"`
	// Signatures says which images must be signed, by whom. Without the
	// section every image is accepted (BuiltinSignatures).
	Signatures *Signatures `yaml:"signatures" json:"signatures"`
	// KubeletRoot is the kubelet's root directory (--root-dir), below
	// which each pod's volumes live in pods/<pod uid>/. Default
	// /var/lib/kubelet.
	KubeletRoot string `yaml:"kubeletRoot" json:"kubeletRoot"`
	// VolumesDir is where the containers' volumes on disk are
	// (rootfs.volumes: disk): <volumesDir>/<namespace>/<id>, removed with
	// the container, and, after a crash, at the next start of a shim of
	// the same containerd. Default "": in containerd's working directory of
	// each task (<containerd root>/io.containerd.runtime.v2.task/
	// <namespace>/<id>/volumes), which containerd removes with the task.
	// One containerd per directory.
	VolumesDir string `yaml:"volumesDir" json:"volumesDir,omitempty"`

	// Source says where the policy came from (a path or the built-in default).
	Source string `yaml:"-" json:"source"`
	// Hash is the sha256 of the file, for caches keyed by policy.
	Hash string `yaml:"-" json:"hash"`

	// levels holds the built-in and the policy's own levels, ready to use.
	levels map[string]*profiles.Level
	// own lists the policy's own level names in file order.
	own []string
}

// Rule picks a level for the workloads it matches.
type Rule struct {
	// Name is shown in logs and decisions.
	Name string `yaml:"name" json:"name"`
	// Match selects workloads; every non-empty field must match.
	Match Match `yaml:"match" json:"match"`
	// Level is the level to apply.
	Level string `yaml:"level" json:"level"`
	// Mode overrides the policy's mode for matched workloads.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// AllowAnnotationLevels lists levels the hardened.dev/level annotation
	// may select for matched workloads even when they are looser.
	AllowAnnotationLevels []string `yaml:"allowAnnotationLevels,omitempty" json:"allowAnnotationLevels,omitempty"`
}

// Match lists globs (path.Match syntax; a trailing "/**" matches any depth).
type Match struct {
	KubernetesNamespaces []string `yaml:"kubernetesNamespaces,omitempty" json:"kubernetesNamespaces,omitempty"`
	ContainerdNamespaces []string `yaml:"containerdNamespaces,omitempty" json:"containerdNamespaces,omitempty"`
	Images               []string `yaml:"images,omitempty" json:"images,omitempty"`
}

// levelHeader is the part of a policy level that is not a profiles.Level.
type levelHeader struct {
	Extends string `yaml:"extends"`
}

// levelDoc is a policy level as the file spells it, for strict checking.
type levelDoc struct {
	// Extends names the level this one starts from: a built-in level or one
	// defined earlier. Without it the level starts from the zero level.
	Extends        string `yaml:"extends,omitempty"`
	profiles.Level `yaml:",inline"`
}

// Workload is what the policy decides on.
type Workload struct {
	// KubernetesNamespace comes from containerd's CRI annotation
	// io.kubernetes.cri.sandbox-namespace; "" outside Kubernetes.
	KubernetesNamespace string
	// ContainerdNamespace is the containerd namespace (default, k8s.io).
	ContainerdNamespace string
	// Image is the image reference containerd records for the container.
	Image string
	// Annotations are the spec's annotations.
	Annotations map[string]string
}

// Decision is the level and mode for one workload, and why.
type Decision struct {
	Level  *profiles.Level
	Mode   Mode
	Rule   string
	Reason string
}

const defaultHashInput = "hardened built-in default policy v1"

// Default is the policy without a file: restricted, enforce.
func Default() *Policy {
	p := &Policy{Mode: Enforce, DefaultLevel: profiles.DefaultLevel, Source: "built-in default", Signatures: BuiltinSignatures(), KubeletRoot: DefaultKubeletRoot}
	sum := sha256.Sum256([]byte(defaultHashInput))
	p.Hash = hex.EncodeToString(sum[:])
	if err := p.compile(); err != nil {
		panic(err) // the built-in levels are tested
	}
	return p
}

// Load reads the policy file at path. A missing file gives the built-in
// default.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		p := Default()
		p.Source = "built-in default (no " + file + ")"
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	p.Source = file
	return p, nil
}

// Parse parses a policy strictly, fills defaults and validates it.
func Parse(data []byte) (*Policy, error) {
	// First strictly, into a shadow with the levels typed, so that an
	// unknown key anywhere is an error with its line; then into the policy
	// with each level kept as a YAML node, to merge onto the level it extends.
	var shadow struct {
		Mode         Mode                `yaml:"mode"`
		DefaultLevel string              `yaml:"defaultLevel"`
		Levels       map[string]levelDoc `yaml:"levels"`
		Rules        []Rule              `yaml:"rules"`
		Signatures   *Signatures         `yaml:"signatures"`
		KubeletRoot  string              `yaml:"kubeletRoot"`
		VolumesDir   string              `yaml:"volumesDir"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&shadow); err != nil && !errors.Is(err, io.EOF) {
		return nil, cleanYAMLError(err)
	}
	var p Policy
	if err := yaml.Unmarshal(data, &p); err != nil {
		return nil, cleanYAMLError(err)
	}
	if p.Mode == "" {
		p.Mode = Enforce
	}
	if p.DefaultLevel == "" {
		p.DefaultLevel = profiles.DefaultLevel
	}
	if p.KubeletRoot == "" {
		p.KubeletRoot = DefaultKubeletRoot
	}
	sum := sha256.Sum256(data)
	p.Hash = hex.EncodeToString(sum[:])
	p.Source = "inline"
	if err := p.compile(); err != nil {
		return nil, err
	}
	var sigErr error
	if p.Signatures == nil {
		p.Signatures = BuiltinSignatures()
	} else {
		sigErr = p.Signatures.load(os.ReadFile)
	}
	if err := errors.Join(p.Validate(), sigErr); err != nil {
		return nil, err
	}
	return &p, nil
}

// yamlTypeNoise is the Go type yaml.v3 names in unknown-field errors: it
// means nothing to the person editing the file.
var yamlTypeNoise = regexp.MustCompile(` in type [^\n]*`)

func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.Replace(msg, "unmarshal errors:\n  ", "", 1)
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = yamlTypeNoise.ReplaceAllString(msg, "")
	return errors.New(msg)
}

// compile builds the levels: built-ins, then the policy's own in an order
// where each comes after the level it extends.
func (p *Policy) compile() error {
	p.levels = map[string]*profiles.Level{}
	for _, n := range profiles.BuiltinNames() {
		l, _ := profiles.Builtin(n)
		p.levels[n] = l
	}
	names := make([]string, 0, len(p.Levels))
	for n := range p.Levels {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	pending := slices.Clone(names)
	for len(pending) > 0 {
		progress := false
		for i := 0; i < len(pending); i++ {
			name := pending[i]
			node := p.Levels[name]
			var h levelHeader
			if err := decodeLoose(&node, &h); err != nil {
				errs = append(errs, fmt.Errorf("levels.%s: %w", name, err))
				pending = slices.Delete(pending, i, i+1)
				i--
				progress = true
				continue
			}
			if h.Extends != "" && p.levels[h.Extends] == nil {
				if _, ok := p.Levels[h.Extends]; ok && slices.Contains(pending, h.Extends) {
					continue // its base is not built yet
				}
				errs = append(errs, fmt.Errorf("levels.%s.extends: unknown level %q (known: %s)", name, h.Extends, strings.Join(p.knownNames(), ", ")))
				pending = slices.Delete(pending, i, i+1)
				i--
				progress = true
				continue
			}
			l, err := p.buildLevel(name, &node, h.Extends)
			if err != nil {
				errs = append(errs, err)
			} else {
				p.levels[name] = l
				p.own = append(p.own, name)
			}
			pending = slices.Delete(pending, i, i+1)
			i--
			progress = true
		}
		if !progress {
			errs = append(errs, fmt.Errorf("levels: %s extend each other in a cycle", strings.Join(pending, ", ")))
			break
		}
	}
	return errors.Join(errs...)
}

func (p *Policy) buildLevel(name string, node *yaml.Node, extends string) (*profiles.Level, error) {
	if slices.Contains(profiles.BuiltinNames(), name) {
		return nil, fmt.Errorf("levels.%s: redefines a built-in level; pick another name and `extends: %s`", name, name)
	}
	var l *profiles.Level
	if extends != "" {
		l = p.levels[extends].Clone()
	} else {
		l = &profiles.Level{}
	}
	// Only the keys present override the base ("extends" is not a level key
	// and is ignored here; the strict pass has checked every key).
	if err := node.Decode(l); err != nil {
		return nil, fmt.Errorf("levels.%s (line %d): %w", name, node.Line, cleanYAMLError(err))
	}
	l.Name = name
	if extends != "" {
		if err := checkReplacedCapabilities(name, extends, p.levels[extends], l, node); err != nil {
			return nil, err
		}
	}
	normaliseLegacyKeys(l, node)
	l.SetDefaults()
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("levels.%s: %w", name, err)
	}
	l.FoldCapabilities()
	return l, nil
}

// checkReplacedCapabilities refuses the capabilities.allow of a level
// that extends another when it both adds capabilities the base level does
// not allow and leaves out some it does. Such an allow replaces the base's
// list (YAML lists are not merged), and an admin who meant to add one
// capability would silently lose the others: capabilities.add says that.
// An allow that only narrows the base's list (a subset) or only widens it
// (a superset) means what it says and is kept.
func checkReplacedCapabilities(name, extends string, base, l *profiles.Level, node *yaml.Node) error {
	if !hasKey(node, "capabilities", "allow") {
		return nil
	}
	var added, lost []string
	for _, c := range l.Capabilities.Allow {
		if !slices.Contains(base.Capabilities.Allow, c) {
			added = append(added, c)
		}
	}
	for _, c := range base.Capabilities.Allow {
		if !slices.Contains(l.Capabilities.Allow, c) {
			lost = append(lost, c)
		}
	}
	if len(added) == 0 || len(lost) == 0 {
		return nil
	}
	return fmt.Errorf("levels.%s.capabilities.allow: adds %s to level %s and leaves out %s, which %s allows: in a level that extends another, allow replaces the base level's list; to add to it write capabilities.add: [%s]; to leave some out as well, list them in capabilities.drop",
		name, strings.Join(added, ", "), extends, strings.Join(lost, ", "), extends, strings.Join(added, ", "))
}

// normaliseLegacyKeys gives an older key its meaning in a level that
// extends another: rootfs.volumesAsTmpfs without rootfs.volumes says what
// the level's volumes are (true: tmpfs, false: none), whatever the base's.
func normaliseLegacyKeys(l *profiles.Level, node *yaml.Node) {
	if hasKey(node, "rootfs", "volumesAsTmpfs") && !hasKey(node, "rootfs", "volumes") {
		l.Rootfs.Volumes = profiles.VolumesNone
		if l.Rootfs.VolumesAsTmpfs {
			l.Rootfs.Volumes = profiles.VolumesTmpfs
		}
		l.Rootfs.VolumesAsTmpfs = false
	}
}

// hasKey reports whether the mapping node has the nested key path.
func hasKey(node *yaml.Node, keys ...string) bool {
	for _, k := range keys {
		if node == nil || node.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == k {
				next = node.Content[i+1]
			}
		}
		node = next
	}
	return node != nil
}

// decodeLoose reads the header fields of a level, ignoring the rest.
func decodeLoose(node *yaml.Node, v *levelHeader) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of level settings", node.Line)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "extends" {
			return node.Content[i+1].Decode(&v.Extends)
		}
	}
	return nil
}

func (p *Policy) knownNames() []string {
	return append(profiles.BuiltinNames(), p.own...)
}

// Validate reports every problem at once, each naming its key.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	known := strings.Join(p.knownNames(), ", ")
	if p.Mode != Enforce && p.Mode != Audit {
		bad("mode: %q is not one of enforce, audit", p.Mode)
	}
	if p.levels[p.DefaultLevel] == nil {
		bad("defaultLevel: unknown level %q (known: %s)", p.DefaultLevel, known)
	}
	if !path.IsAbs(p.KubeletRoot) || path.Clean(p.KubeletRoot) != p.KubeletRoot || p.KubeletRoot == "/" {
		bad("kubeletRoot: %q must be a clean absolute path other than / (the kubelet's --root-dir)", p.KubeletRoot)
	}
	if v := p.VolumesDir; v != "" {
		if !path.IsAbs(v) || path.Clean(v) != v || v == "/" {
			bad("volumesDir: %q must be a clean absolute path other than / (for example /var/lib/hardened/volumes)", v)
		} else {
			for _, s := range profiles.SensitiveHostPaths {
				if s.Path != "/" && (s.Covers(v) || profiles.IsBelow(s.Path, v)) {
					bad("volumesDir: %q is or holds %s (%s): containers would get (and the runtime remove) directories there; pick a directory of its own, such as /var/lib/hardened/volumes", v, s.Path, s.Why)
					break
				}
			}
		}
	}
	names := map[string]int{}
	for i, r := range p.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			bad("%s.name: must not be empty", key)
		} else if j, dup := names[r.Name]; dup {
			bad("%s.name: %q is also the name of rules[%d]", key, r.Name, j)
		} else {
			names[r.Name] = i
		}
		m := r.Match
		if len(m.KubernetesNamespaces)+len(m.ContainerdNamespaces)+len(m.Images) == 0 {
			bad("%s.match: empty; to match everything set defaultLevel instead", key)
		}
		for field, globs := range map[string][]string{"kubernetesNamespaces": m.KubernetesNamespaces, "containerdNamespaces": m.ContainerdNamespaces, "images": m.Images} {
			for _, g := range globs {
				if _, err := path.Match(strings.TrimSuffix(g, "/**"), ""); err != nil {
					bad("%s.match.%s: %q is not a valid glob: %v", key, field, g, err)
				}
			}
		}
		if p.levels[r.Level] == nil {
			bad("%s.level: unknown level %q (known: %s)", key, r.Level, known)
		}
		if r.Mode != "" && r.Mode != Enforce && r.Mode != Audit {
			bad("%s.mode: %q is not one of enforce, audit", key, r.Mode)
		}
		for _, a := range r.AllowAnnotationLevels {
			if p.levels[a] == nil {
				bad("%s.allowAnnotationLevels: unknown level %q (known: %s)", key, a, known)
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Level returns a level by name: a built-in one or the policy's own. The
// level is shared: callers must not change it.
func (p *Policy) Level(name string) (*profiles.Level, bool) {
	l, ok := p.levels[name]
	return l, ok
}

// LevelNames lists the built-in levels, then the policy's own.
func (p *Policy) LevelNames() []string { return p.knownNames() }

// Resolve picks the level and mode for a workload.
func (p *Policy) Resolve(w Workload) (*Decision, error) {
	d := &Decision{Level: p.levels[p.DefaultLevel], Mode: p.Mode, Rule: "defaultLevel", Reason: "no rule matched; defaultLevel " + p.DefaultLevel}
	var matched *Rule
	for i := range p.Rules {
		r := &p.Rules[i]
		if why, ok := r.matches(w); ok {
			matched = r
			d.Level, d.Rule = p.levels[r.Level], fmt.Sprintf("rules[%d] (%s)", i, r.Name)
			d.Reason = fmt.Sprintf("rule %q matched %s", r.Name, why)
			if r.Mode != "" {
				d.Mode = r.Mode
			}
			break
		}
	}
	want, ok := w.Annotations[LevelAnnotation]
	if !ok || want == d.Level.Name {
		return d, nil
	}
	l := p.levels[want]
	if l == nil {
		return nil, fmt.Errorf("annotation %s=%q: unknown level (known: %s)", LevelAnnotation, want, strings.Join(p.knownNames(), ", "))
	}
	if profiles.Stricter(want, d.Level.Name) || (matched != nil && slices.Contains(matched.AllowAnnotationLevels, want)) {
		d.Level = l
		d.Reason += "; annotation " + LevelAnnotation + "=" + want
		return d, nil
	}
	where := "the matched rule's allowAnnotationLevels"
	if matched == nil {
		where = "allowAnnotationLevels of a rule matching this workload"
	}
	return nil, fmt.Errorf("annotation %s=%q may not replace level %s (%s): annotations may only select a stricter built-in level; list %s in %s to allow it",
		LevelAnnotation, want, d.Level.Name, d.Reason, want, where)
}

// matches reports whether the rule matches w, and on what.
func (r *Rule) matches(w Workload) (string, bool) {
	var why []string
	check := func(field string, globs []string, value string, match func(string, string) bool) bool {
		if len(globs) == 0 {
			return true
		}
		for _, g := range globs {
			if match(g, value) {
				why = append(why, field+" "+value)
				return true
			}
		}
		return false
	}
	if !check("kubernetesNamespace", r.Match.KubernetesNamespaces, w.KubernetesNamespace, globMatch) ||
		!check("containerdNamespace", r.Match.ContainerdNamespaces, w.ContainerdNamespace, globMatch) ||
		!check("image", r.Match.Images, w.Image, imageMatch) {
		return "", false
	}
	return strings.Join(why, ", "), true
}

func globMatch(glob, value string) bool {
	if value == "" {
		return false
	}
	if prefix, ok := strings.CutSuffix(glob, "/**"); ok {
		for i := len(value) - 1; i > 0; i-- {
			if value[i] == '/' {
				if ok, _ := path.Match(prefix, value[:i]); ok {
					return true
				}
			}
		}
		return false
	}
	ok, _ := path.Match(glob, value)
	return ok
}

// imageMatch matches an image reference against a glob, trying the
// reference as written and in the short forms docker users write
// ("nginx" for docker.io/library/nginx, with or without tag or digest).
func imageMatch(glob, ref string) bool {
	for _, c := range imageForms(ref) {
		if globMatch(glob, c) {
			return true
		}
	}
	return false
}

func imageForms(ref string) []string {
	forms := []string{ref}
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	forms = append(forms, name)
	for _, prefix := range []string{"docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"} {
		if short, ok := strings.CutPrefix(ref, prefix); ok {
			forms = append(forms, short, strings.TrimPrefix(name, prefix))
		}
	}
	return forms
}
