package spec

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allFieldPaths walks type t by reflection, as encoding/json sees it, and
// returns the path of every field below it (FieldClass.Path style). Below a
// field for which stop returns true it does not go.
func allFieldPaths(t reflect.Type, prefix string, stop func(string) bool, depth int) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		if stop(p) || depth > 16 {
			continue
		}
		if et, many := elem(f.Type); et.Kind() == reflect.Struct {
			if many {
				p += "[]"
			}
			out = append(out, allFieldPaths(et, p, stop, depth+1)...)
		}
	}
	return out
}

// TestEveryFieldIsClassified walks every field of runtime-spec's Spec and
// fails when one has no classification (a new runtime-spec added it:
// classify it in fieldTable) or when the table names a field that does not
// exist. Below a refused field nothing needs a classification: any value
// there refuses the container.
func TestEveryFieldIsClassified(t *testing.T) {
	byPath := map[string]FieldClass{}
	for _, f := range fieldTable {
		if _, dup := byPath[f.Path]; dup {
			t.Errorf("field %s is classified twice", f.Path)
		}
		byPath[f.Path] = f
	}
	refusedBelow := func(p string) bool { f, ok := byPath[p]; return ok && f.Class == Refused }
	paths := allFieldPaths(reflect.TypeFor[specs.Spec](), "", refusedBelow, 0)
	if len(paths) < 150 {
		t.Fatalf("walked only %d fields of specs.Spec", len(paths))
	}
	for _, p := range paths {
		if _, ok := byPath[p]; !ok {
			t.Errorf("field %s of specs.Spec has no classification: add it to fieldTable in classify.go (kept, checked, forced or refused)", p)
		}
	}
	for p := range byPath {
		if !slices.Contains(paths, p) {
			t.Errorf("fieldTable classifies %s, which specs.Spec does not have", p)
		}
	}
	if u := fields().unclassified; len(u) > 0 {
		t.Errorf("the fields rule sees unclassified fields %v", u)
	}
	names := RuleNames()
	for _, f := range fieldTable {
		switch f.Class {
		case Kept:
			if f.Why == "" {
				t.Errorf("kept field %s does not say why it is harmless", f.Path)
			}
		case Checked, Forced:
			if !slices.Contains(names, f.Rule) {
				t.Errorf("%s field %s names rule %q, which does not exist", f.Class, f.Path, f.Rule)
			}
		case Refused:
			if f.Why == "" || f.Fix == "" || f.Rule != "fields" {
				t.Errorf("refused field %s lacks a reason or a fix: %+v", f.Path, f)
			}
		default:
			t.Errorf("field %s has class %q", f.Path, f.Class)
		}
	}
	if got := Fields(); len(got) != len(fieldTable) || !slices.IsSortedFunc(got, func(a, b FieldClass) int { return strings.Compare(a.Path, b.Path) }) {
		t.Errorf("Fields() is not the sorted table")
	}
}

// futureSpec stands for a Spec of a newer runtime-spec: a field the table
// does not know, in a struct it knows.
type futureSpec struct {
	Process *futureProcess `json:"process,omitempty"`
	Root    *specs.Root    `json:"root,omitempty"`
}

type futureProcess struct {
	Args       []string `json:"args,omitempty"`
	Privileged bool     `json:"privileged,omitempty"`
}

// TestUnclassifiedFieldIsRefused: the engine refuses a value in a field
// its table does not classify, by construction, and ignores the zero
// value.
func TestUnclassifiedFieldIsRefused(t *testing.T) {
	byPath := map[string]*FieldClass{}
	for i := range fieldTable {
		byPath[fieldTable[i].Path] = &fieldTable[i]
	}
	tree := &fieldTree{}
	nodes := tree.build(reflect.TypeFor[futureSpec](), "", byPath, 0)
	if !slices.Equal(tree.unclassified, []string{"process.privileged"}) {
		t.Fatalf("unclassified = %v, want [process.privileged]", tree.unclassified)
	}
	for _, tc := range []struct {
		privileged bool
		want       int
	}{{false, 0}, {true, 1}} {
		h := &hardening{rule: "fields"}
		s := futureSpec{Process: &futureProcess{Args: []string{"sh"}, Privileged: tc.privileged}, Root: &specs.Root{Path: "/"}}
		h.walkFields(nodes, reflect.ValueOf(s), "")
		if len(h.refusals) != tc.want {
			t.Fatalf("privileged=%v: refusals %v, want %d", tc.privileged, h.refusals, tc.want)
		}
		if tc.want == 1 {
			v := h.refusals[0]
			if v.Rule != "fields" || v.Field != "process.privileged" || v.Value != "true" || !strings.Contains(v.Reason, "does not know the field") || v.Fix == "" {
				t.Errorf("refusal = %+v", v)
			}
		}
	}
}

// TestRefusedFields: a value in a refused field refuses the container with
// rule fields, the field (with its key or index) and the value; the zero
// value does not.
func TestRefusedFields(t *testing.T) {
	one := uint32(1)
	for _, tc := range []struct {
		name   string
		mutate func(s *specs.Spec)
		field  string
	}{
		{"netDevices", func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {Name: "eth9"}} }, "linux.netDevices"},
		{"netDevices without a name", func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {}} }, "linux.netDevices"},
		{"intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "host"} }, "linux.intelRdt"},
		{"intelRdt empty", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} }, "linux.intelRdt"},
		{"personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} }, "linux.personality"},
		{"timeOffsets", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400}}
		}, "linux.timeOffsets"},
		{"net_cls", func(s *specs.Spec) { s.Linux.Resources.Network = &specs.LinuxNetwork{ClassID: &one} }, "linux.resources.network"},
		{"windows", func(s *specs.Spec) { s.Windows = &specs.Windows{} }, "windows"},
		{"solaris", func(s *specs.Spec) { s.Solaris = &specs.Solaris{LimitPriv: "all"} }, "solaris"},
		{"vm", func(s *specs.Spec) { s.VM = &specs.VM{Kernel: specs.VMKernel{Path: "/boot/vmlinuz"}} }, "vm"},
		{"zos", func(s *specs.Spec) { s.ZOS = &specs.ZOS{} }, "zos"},
		{"freebsd", func(s *specs.Spec) { s.FreeBSD = &specs.FreeBSD{} }, "freebsd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "real-ctr-run")
			tc.mutate(s)
			_, err := Harden(s, level(t, "restricted"), Inputs{Host: noAppArmorHost})
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Harden = %v, want a refusal", err)
			}
			v := refused.Violations[0]
			if v.Rule != "fields" || v.Field != tc.field || v.Value == "" || v.Reason == "" || v.Fix == "" {
				t.Errorf("violation = %+v, want rule fields, field %s, a value, reason and fix", v, tc.field)
			}
			if msg := err.Error(); !strings.Contains(msg, "rule fields: "+tc.field+"=") {
				t.Errorf("error %q does not name the rule, field and value", msg)
			}
		})
	}
	// Empty maps and lists are no values: a client that writes
	// "netDevices": {} is not refused.
	s := readSpec(t, "real-ctr-run")
	s.Linux.NetDevices = map[string]specs.LinuxNetDevice{}
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{}
	if _, err := Harden(s, level(t, "restricted"), Inputs{Host: noAppArmorHost}); err != nil {
		t.Errorf("empty netDevices and timeOffsets: %v", err)
	}
}

// TestExecFieldsAreJudged: an exec'd process goes through the same field
// classification as the container's.
func TestExecFieldsAreJudged(t *testing.T) {
	l := level(t, "restricted")
	res, err := Harden(readSpec(t, "real-ctr-run"), l, Inputs{Host: noAppArmorHost})
	if err != nil {
		t.Fatal(err)
	}
	p := execOf(readSpec(t, "real-ctr-run"))
	p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT}
	_, _, err = HardenProcess(p, res.Spec, l, Inputs{Host: noAppArmorHost})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Violations[0].Rule != "scheduling" || refused.Violations[0].Field != "exec.ioPriority.class" {
		t.Errorf("HardenProcess(ioPriority RT) = %v, want refused by scheduling at exec.ioPriority.class", err)
	}
}
