package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
)

// Flags of learn's second form: from what an observer saw.
var learnSeenFlags = []cli.Flag{
	&cli.StringFlag{Name: "events", Usage: "learn from these events (JSON lines of `hardenctl events --output json`; - for stdin) instead of a run"},
	&cli.StringFlag{Name: "metrics", Usage: "learn from an observer's counters (URL of `hardenctl observe`'s /metrics) instead of a run"},
	&cli.StringFlag{Name: "pod", Usage: "with --events/--metrics: only this Kubernetes pod (NAMESPACE/NAME)"},
	&cli.StringFlag{Name: "container", Usage: "with --events/--metrics: only this container (containerd NAMESPACE/ID; with --metrics NAMESPACE/NAME outside Kubernetes)"},
	&cli.StringFlag{Name: "name", Usage: "with --events/--metrics: the name of the proposed level (default: LEVEL-learned)"},
}

// seen is what an observer reported of one workload.
type seen struct {
	source  string
	level   string // the level the events name, if one
	image   string
	podNS   string
	ctrNS   string
	counts  map[string]uint64 // syscall -> denials or would-be denials
	records int
}

func (s *seen) add(syscall string, n uint64) {
	if s.counts == nil {
		s.counts = map[string]uint64{}
	}
	s.counts[syscall] += n
}

// learnFromSeen is learn --events/--metrics: it turns what a level denied
// (or, in trial mode, would have denied) into a level that allows it, as
// a policy change, and optionally a profile.
func learnFromSeen(c *cli.Context) error {
	var s *seen
	var err error
	switch {
	case c.String("events") != "" && c.String("metrics") != "":
		return usageError{"learn: give --events or --metrics, not both"}
	case c.String("events") != "":
		s, err = seenInEvents(c)
	default:
		s, err = seenInMetrics(c)
	}
	if err != nil {
		return err
	}
	pol, err := policy.Load(c.String("policy"))
	if err != nil {
		return err
	}
	base := c.String("level")
	if base == "" {
		base = s.level
	}
	if base == "" {
		return usageError{"learn: the events name no single level; give --level"}
	}
	level, ok := pol.Level(base)
	if !ok {
		return usageError{fmt.Sprintf("learn: level %q is not in the policy %s (known: %s); give --policy or --level", base, pol.Source, strings.Join(pol.LevelNames(), ", "))}
	}
	p, err := propose(level, s.counts)
	if err != nil {
		return err
	}
	name := c.String("name")
	if name == "" {
		name = base + "-learned"
	}
	snippet, err := p.policySnippet(name, base, s)
	if err != nil {
		return err
	}
	if out := c.String("out"); out != "" {
		data, err := json.MarshalIndent(p.profile, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.Write(out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, map[string]any{"source": s.source, "level": base, "syscalls": s.counts, "packs": p.packs,
			"byPack": p.byPack, "notInPacks": p.uncovered, "policy": snippet})
	}
	w := c.App.Writer
	if len(s.counts) == 0 {
		fmt.Fprintf(w, "%s: no denials of level %s (expected probes aside): nothing to change\n", s.source, base)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSCALL\tCALLS\tALLOWED BY")
	for _, n := range sortedByCount(s.counts) {
		by := "no pack: " + p.why[n]
		if pk := p.packOf[n]; pk != "" {
			by = "pack " + pk
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", n, s.counts[n], by)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n# proposed change to the node policy (%s):\n%s", pol.Source, snippet)
	if len(p.uncovered) > 0 {
		fmt.Fprintf(w, "\n# %s: no level can allow these without a workload profile; the level's seccomp allowlist does not have them.\n", strings.Join(p.uncovered, ", "))
		if c.String("out") != "" {
			fmt.Fprintf(w, "# %s is level %s's profile plus them: try it with `hardenctl run --seccomp %s`; the shim replaces it with the level's (it is weaker).\n", c.String("out"), base, c.String("out"))
		}
	}
	return nil
}

// proposal is how a level would allow what was seen.
type proposal struct {
	packs     []string            // packs to add
	byPack    map[string][]string // pack -> the seen syscalls it allows
	packOf    map[string]string   // syscall -> pack
	uncovered []string            // seen, in no pack
	why       map[string]string
	profile   *specs.LinuxSeccomp // the level's enforcing profile plus the packs and the uncovered syscalls
}

func propose(level *profiles.Level, counts map[string]uint64) (*proposal, error) {
	p := &proposal{byPack: map[string][]string{}, packOf: map[string]string{}, why: map[string]string{}}
	some, _, err := profiles.SeccompAllows(level, level.Capabilities.Allow)
	if err != nil {
		return nil, err
	}
	for _, n := range sortedNames(counts) {
		for _, pk := range profiles.PackNames() {
			for _, m := range profiles.Packs[pk] {
				if m == n && p.packOf[n] == "" {
					p.packOf[n] = pk
					p.byPack[pk] = append(p.byPack[pk], n)
				}
			}
		}
		if p.packOf[n] == "" {
			p.uncovered = append(p.uncovered, n)
			if some[n] {
				p.why[n] = "the level allows it for some arguments only"
			} else {
				p.why[n] = "not in the level's allowlist"
			}
		}
	}
	for pk := range p.byPack {
		if !contains(level.Seccomp.Packs, pk) {
			p.packs = append(p.packs, pk)
		}
	}
	sort.Strings(p.packs)
	target := level.Clone()
	target.Seccomp.Mode = profiles.SeccompEnforce
	target.Seccomp.Packs = append(target.Seccomp.Packs, p.packs...)
	prof, err := profiles.Seccomp(target, level.Capabilities.Allow)
	if err != nil {
		return nil, err
	}
	p.profile = copyProfile(prof)
	if len(p.uncovered) > 0 {
		p.profile.Syscalls = append(p.profile.Syscalls, specs.LinuxSyscall{Names: p.uncovered, Action: specs.ActAllow})
	}
	return p, nil
}

// policySnippet is the YAML of a level that extends the observed one with
// the packs, enforcing, and a rule that gives it to the workload.
func (p *proposal) policySnippet(name, base string, s *seen) (string, error) {
	type seccomp struct {
		Mode  string   `yaml:"mode"`
		Packs []string `yaml:"packs,omitempty"`
	}
	type lvl struct {
		Extends     string  `yaml:"extends"`
		Description string  `yaml:"description"`
		Seccomp     seccomp `yaml:"seccomp"`
	}
	match := map[string][]string{}
	switch {
	case s.image != "":
		match["images"] = []string{repository(s.image)}
	case s.podNS != "":
		match["kubernetesNamespaces"] = []string{s.podNS}
	case s.ctrNS != "":
		match["containerdNamespaces"] = []string{s.ctrNS}
	}
	type rule struct {
		Name  string              `yaml:"name"`
		Match map[string][]string `yaml:"match"`
		Level string              `yaml:"level"`
	}
	doc := struct {
		Levels map[string]lvl `yaml:"levels"`
		Rules  []rule         `yaml:"rules"` // first match wins: put it before broader rules
	}{
		Levels: map[string]lvl{name: {Extends: base, Description: "learned from " + s.source, Seccomp: seccomp{Mode: "enforce", Packs: p.packs}}},
		Rules:  []rule{{Name: name + " (hardenctl learn)", Match: match, Level: name}},
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", err
	}
	return b.String(), enc.Close()
}

// repository drops the tag and digest of an image reference.
func repository(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// seenInEvents reads JSON lines of events and keeps the seccomp ones of
// the workload the flags name.
func seenInEvents(c *cli.Context) (*seen, error) {
	file := c.String("events")
	var r io.Reader = c.App.Reader
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	} else if r == nil {
		r = os.Stdin
	}
	podNS, pod, _ := strings.Cut(c.String("pod"), "/")
	ctrNS, ctrID, _ := strings.Cut(c.String("container"), "/")
	s := &seen{source: file}
	levels := map[string]bool{}
	images := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		x := e.Seccomp
		if x == nil || x.Expected || e.Container.ID == "" || x.Action == "allow" {
			continue
		}
		if (pod != "" && (e.Container.PodNamespace != podNS || e.Container.Pod != pod)) ||
			(ctrID != "" && (e.Container.Namespace != ctrNS || e.Container.ID != ctrID)) {
			continue
		}
		s.records++
		s.add(x.Syscall, x.Count)
		if e.Container.Level != "" {
			levels[e.Container.Level] = true
		}
		if e.Container.Image != "" {
			images[e.Container.Image] = true
		}
		s.podNS, s.ctrNS = e.Container.PodNamespace, e.Container.Namespace
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(levels) > 1 {
		return nil, usageError{fmt.Sprintf("learn: the events name several levels (%s): narrow them with --pod or --container, or give --level", strings.Join(keys(levels), ", "))}
	}
	for l := range levels {
		s.level = l
	}
	if len(images) == 1 {
		for i := range images {
			s.image = i
		}
	}
	return s, nil
}

// seenInMetrics reads an observer's counters of the workload the flags name.
func seenInMetrics(c *cli.Context) (*seen, error) {
	url := c.String("metrics")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--metrics %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", url, err)
	}
	podNS, pod, _ := strings.Cut(c.String("pod"), "/")
	ctrNS, ctrName, _ := strings.Cut(c.String("container"), "/")
	if pod == "" && ctrName == "" {
		return nil, usageError{"learn --metrics: name the workload with --pod or --container"}
	}
	s := &seen{source: url, podNS: podNS, ctrNS: ctrNS}
	for _, name := range []string{"hardened_seccomp_audited_total", "hardened_seccomp_denied_total"} {
		f := families[name]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			l := labelMap(m)
			if l["expected"] == "true" || (pod != "" && (l["namespace"] != podNS || l["pod"] != pod)) ||
				(ctrName != "" && (l["containerd_namespace"] != ctrNS || l["container"] != ctrName)) {
				continue
			}
			if v := m.GetCounter().GetValue(); v > 0 {
				s.records++
				s.add(l["syscall"], uint64(v))
			}
		}
	}
	return s, nil
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func sortedNames(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedByCount(m map[string]uint64) []string {
	out := sortedNames(m)
	sort.SliceStable(out, func(i, j int) bool { return m[out[i]] > m[out[j]] })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyProfile deep-copies a cached profile before it is changed.
func copyProfile(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	data, _ := json.Marshal(p)
	var c specs.LinuxSeccomp
	json.Unmarshal(data, &c)
	return &c
}
