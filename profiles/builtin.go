package profiles

import (
	"bytes"
	"embed"
	"fmt"
	"slices"
	"sort"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed levels/*.yaml
var levelFiles embed.FS

// Built-in level names.
const (
	Baseline   = "baseline"
	Restricted = "restricted"
	Strict     = "strict"
)

// DefaultLevel is the level used when no policy says otherwise.
const DefaultLevel = Restricted

// builtinOrder ranks the built-in levels from loosest to strictest; an
// annotation may move a workload up this order but never down.
var builtinOrder = []string{Baseline, Restricted, Strict}

// builtins parses the levels on first use, not at init: every process of
// the shim binary (start, the shim, delete) pays for its init, and two of
// the three never need a level.
var builtins = sync.OnceValue(mustLoadBuiltins)

func mustLoadBuiltins() map[string]*Level {
	m := map[string]*Level{}
	for _, name := range builtinOrder {
		data, err := levelFiles.ReadFile("levels/" + name + ".yaml")
		if err != nil {
			panic(err)
		}
		l, err := DecodeLevel(data)
		if err != nil {
			panic(fmt.Sprintf("built-in level %s: %v", name, err))
		}
		m[name] = l
	}
	return m
}

// DecodeLevel parses one level from YAML strictly (unknown keys are errors
// with line numbers), fills defaults and validates it.
func DecodeLevel(data []byte) (*Level, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var l Level
	if err := dec.Decode(&l); err != nil {
		return nil, err
	}
	l.SetDefaults()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	l.FoldCapabilities()
	return &l, nil
}

// Builtin returns a copy of the built-in level called name.
func Builtin(name string) (*Level, bool) {
	l, ok := builtins()[name]
	if !ok {
		return nil, false
	}
	return l.Clone(), true
}

// BuiltinNames lists the built-in levels, loosest first.
func BuiltinNames() []string { return slices.Clone(builtinOrder) }

// Stricter reports whether built-in level a is stricter than built-in level
// b. Levels outside the built-in order are never stricter than anything.
func Stricter(a, b string) bool {
	ia, ib := slices.Index(builtinOrder, a), slices.Index(builtinOrder, b)
	return ia >= 0 && ib >= 0 && ia > ib
}

// PackNames lists the seccomp packs, sorted.
func PackNames() []string {
	names := make([]string, 0, len(Packs))
	for n := range Packs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
