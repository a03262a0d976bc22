// Package conditions compiles and evaluates the CEL conditions a
// sigstoreAttested requirement puts on an attestation, with cel-go (the
// library and the extension libraries Kubernetes' ValidatingAdmissionPolicy
// uses). It is linked by hardened-verify and hardenctl only: the shim never
// loads CEL (TestShimLinksNoCEL).
package conditions

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/hardened-runtime/hardened/policy"
)

// costLimit bounds one evaluation (CEL's runtime cost units), as the
// API server bounds a ValidatingAdmissionPolicy expression (its
// PerCallLimit, 1,000,000): a condition
// over a large scan report still ends quickly.
const costLimit = 1_000_000

// maxShown bounds a value quoted in a refusal.
const maxShown = 120

// Variables an expression sees (policy.Condition documents them).
var variables = []cel.EnvOption{
	cel.Variable("predicateType", cel.StringType),
	cel.Variable("predicate", cel.DynType),
	cel.Variable("subject", cel.ListType(cel.DynType)),
	cel.Variable("statement", cel.DynType),
	cel.Variable("image", cel.StringType),
	cel.Variable("digest", cel.StringType),
	cel.Variable("now", cel.TimestampType),
}

// roots are the variables whose fields a refusal shows the value of.
var roots = map[string]bool{"predicate": true, "statement": true, "subject": true, "predicateType": true}

// newEnv is the CEL environment of conditions.
func newEnv() (*cel.Env, error) {
	opts := append([]cel.EnvOption{
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Encoders(), ext.Math(),
		cel.OptionalTypes(),
		cel.Function("matchesGlob", cel.MemberOverload("string_matches_glob_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(value, pattern ref.Val) ref.Val {
				v, ok1 := value.(types.String)
				p, ok2 := pattern.(types.String)
				if !ok1 || !ok2 {
					return types.NewErr("matchesGlob: want strings")
				}
				return types.Bool(MatchGlob(string(p), string(v)))
			}))),
	}, variables...)
	return cel.NewEnv(opts...)
}

// Condition is a compiled policy.Condition.
type Condition struct {
	src     policy.Condition
	prg     cel.Program
	message cel.Program // nil without a messageExpression
	// paths are the fields of the attestation the expression reads
	// ("predicate.builder.id"), shown with their values in a refusal.
	paths []path
}

type path struct {
	text string
	prg  cel.Program
}

// Set is the compiled conditions of one requirement.
type Set []*Condition

// Compile compiles the conditions of a requirement; field names it for
// errors ("signatures.scopes[\"r.io\"][1]").
func Compile(field string, conds []policy.Condition) (Set, error) {
	if len(conds) == 0 {
		return nil, nil
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	var out Set
	var errs []error
	for i, c := range conds {
		cc, err := compile(env, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.conditions[%d]: %w", field, i, err))
			continue
		}
		out = append(out, cc)
	}
	return out, errors.Join(errs...)
}

func compile(env *cel.Env, c policy.Condition) (*Condition, error) {
	a, iss := env.Compile(c.Expression)
	if iss.Err() != nil {
		return nil, fmt.Errorf("expression %q: %v", c.Expression, oneLine(iss.Err().Error()))
	}
	if a.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("expression %q is of type %s, want bool", c.Expression, a.OutputType())
	}
	prg, err := program(env, a)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", c.Expression, err)
	}
	out := &Condition{src: c, prg: prg}
	if c.MessageExpression != "" {
		m, iss := env.Compile(c.MessageExpression)
		if iss.Err() != nil {
			return nil, fmt.Errorf("messageExpression %q: %v", c.MessageExpression, oneLine(iss.Err().Error()))
		}
		if m.OutputType() != cel.StringType {
			return nil, fmt.Errorf("messageExpression %q is of type %s, want string", c.MessageExpression, m.OutputType())
		}
		if out.message, err = program(env, m); err != nil {
			return nil, err
		}
	}
	for _, p := range fieldPaths(a.NativeRep().Expr()) {
		pa, iss := env.Compile(p)
		if iss.Err() != nil {
			continue
		}
		if pp, err := program(env, pa); err == nil {
			out.paths = append(out.paths, path{text: p, prg: pp})
		}
	}
	return out, nil
}

func program(env *cel.Env, a *cel.Ast) (cel.Program, error) {
	return env.Program(a, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
}

// Input is what a condition is evaluated on.
type Input struct {
	// Statement is the in-toto statement, decoded from JSON.
	Statement map[string]any
	// Image and Digest are what runs.
	Image, Digest string
	// Now is the time of the check.
	Now time.Time
}

func (in Input) activation() map[string]any {
	st := in.Statement
	subject, _ := st["subject"].([]any)
	if subject == nil {
		subject = []any{}
	}
	pt, _ := st["predicateType"].(string)
	pred := st["predicate"]
	if pred == nil {
		pred = map[string]any{}
	}
	return map[string]any{
		"predicateType": pt, "predicate": pred, "subject": subject, "statement": st,
		"image": in.Image, "digest": in.Digest, "now": in.Now.UTC(),
	}
}

// Check evaluates every condition; it returns nil when all hold, else why
// the first one that does not: its message (or expression) and the value
// of each attestation field it reads.
func (s Set) Check(in Input) error {
	act := in.activation()
	for _, c := range s {
		if err := c.check(act); err != nil {
			return err
		}
	}
	return nil
}

func (c *Condition) check(act map[string]any) error {
	val, _, err := c.prg.Eval(act)
	what := fmt.Sprintf("condition %q", c.src.Expression)
	if c.src.Message != "" {
		what = fmt.Sprintf("condition %q (%s)", c.src.Message, c.src.Expression)
	}
	if err != nil {
		return fmt.Errorf("%s cannot be evaluated: %s%s", what, oneLine(err.Error()), c.seen(act))
	}
	if b, ok := val.(types.Bool); ok && bool(b) {
		return nil
	}
	msg := what + " is false"
	if c.message != nil {
		if m, _, err := c.message.Eval(act); err == nil {
			if s, ok := m.(types.String); ok && s != "" {
				msg += ": " + oneLine(string(s))
			}
		}
	}
	return errors.New(msg + c.seen(act))
}

// seen lists the values of the fields the expression reads.
func (c *Condition) seen(act map[string]any) string {
	var parts []string
	for _, p := range c.paths {
		v, _, err := p.prg.Eval(act)
		if err != nil {
			parts = append(parts, p.text+" absent")
			continue
		}
		parts = append(parts, p.text+" = "+show(v))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (seen: " + strings.Join(parts, ", ") + ")"
}

// show renders a value for a one-line message.
func show(v ref.Val) string {
	var s string
	switch x := v.(type) {
	case types.String:
		s = fmt.Sprintf("%q", string(x))
	default:
		native, err := v.ConvertToNative(anyType)
		if err != nil {
			s = fmt.Sprint(v.Value())
		} else {
			s = fmt.Sprintf("%v", native)
		}
	}
	s = oneLine(s)
	if len(s) > maxShown {
		s = s[:maxShown] + "…"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// fieldPaths lists the longest field selections rooted at one of roots
// ("predicate.runDetails.builder.id"), outside comprehension variables,
// sorted.
func fieldPaths(e ast.Expr) []string {
	seen := map[string]bool{}
	var walk func(e ast.Expr, inSelect bool)
	walk = func(e ast.Expr, inSelect bool) {
		switch e.Kind() {
		case ast.SelectKind:
			sel := e.AsSelect()
			if !inSelect && !sel.IsTestOnly() {
				if p, ok := selectPath(e); ok {
					seen[p] = true
				}
			}
			walk(sel.Operand(), true)
		case ast.IdentKind:
			if !inSelect && roots[e.AsIdent()] && e.AsIdent() != "statement" {
				seen[e.AsIdent()] = true
			}
		case ast.CallKind:
			call := e.AsCall()
			if call.IsMemberFunction() {
				walk(call.Target(), false)
			}
			for _, a := range call.Args() {
				walk(a, false)
			}
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el, false)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				me := en.AsMapEntry()
				walk(me.Key(), false)
				walk(me.Value(), false)
			}
		case ast.ComprehensionKind:
			comp := e.AsComprehension()
			walk(comp.IterRange(), false)
			walk(comp.LoopStep(), false)
			walk(comp.LoopCondition(), false)
			walk(comp.Result(), false)
		}
	}
	walk(e, false)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// selectPath renders a chain of field selections on a root variable.
func selectPath(e ast.Expr) (string, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		return e.AsIdent(), roots[e.AsIdent()]
	case ast.SelectKind:
		sel := e.AsSelect()
		p, ok := selectPath(sel.Operand())
		if !ok || !isIdent(sel.FieldName()) {
			return "", false
		}
		return p + "." + sel.FieldName(), true
	}
	return "", false
}

func isIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
