package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/policy"
)

// PolicyEnv names the policy file for every container of the shim (tests
// use it); a runtime's ConfigPath option still wins.
const PolicyEnv = "HARDENED_POLICY"

// policySource is where a container's node policy comes from.
type policySource struct {
	Path string
	// Explicit is true when an administrator named the file: the
	// runtime's ConfigPath option (what the CRI plugin sends, and what
	// `hardenctl install` configures) or $HARDENED_POLICY.
	Explicit bool
	// Marker is policy.MarkerPath (tests put it elsewhere).
	Marker string
}

func policySourceFor(fromOptions string) policySource {
	switch env := os.Getenv(PolicyEnv); {
	case fromOptions != "":
		return policySource{Path: fromOptions, Explicit: true, Marker: policy.MarkerPath}
	case env != "":
		return policySource{Path: env, Explicit: true, Marker: policy.MarkerPath}
	}
	return policySource{Path: policy.DefaultPath, Marker: policy.MarkerPath}
}

// loadPolicy reads the node policy. A missing file weakens nothing: it is
// an error when the file was named explicitly, or when it is the default
// path and a policy was configured on this node before (the marker
// exists: `hardenctl install` writes it, and so does the shim the first
// time it reads a policy from the default path). Only on a node where no
// policy was ever configured does the built-in default apply.
func loadPolicy(src policySource) (*policy.Policy, error) {
	data, err := os.ReadFile(src.Path)
	if errors.Is(err, fs.ErrNotExist) {
		switch _, merr := os.Stat(src.Marker); {
		case src.Explicit:
			return nil, refuse(errFailedPrecondition, "node policy %s does not exist (named by the runtime's ConfigPath or $%s); fix: restore it (hardenctl install --policy FILE) or name another file: a missing policy never falls back to the built-in default", src.Path, PolicyEnv)
		case merr == nil:
			return nil, refuse(errFailedPrecondition, "node policy %s does not exist, but a policy was configured on this node (%s); fix: restore it (hardenctl install --policy FILE), or remove %s to use the built-in default", src.Path, src.Marker, src.Marker)
		}
		p := policy.Default()
		p.Source = "built-in default (no " + src.Path + ")"
		return p, nil
	}
	if err != nil {
		return nil, policyError(src.Path, err)
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, policyError(src.Path, fmt.Errorf("policy %s: %w", src.Path, err))
	}
	p.Source = src.Path
	if !src.Explicit {
		markPolicyConfigured(src.Marker)
	}
	return p, nil
}

// markPolicyConfigured records that this node has a policy; a failure
// only leaves the node as it was (the next create tries again).
func markPolicyConfigured(marker string) {
	if marker == "" {
		return
	}
	if _, err := os.Stat(marker); err == nil {
		return
	}
	if os.MkdirAll(filepath.Dir(marker), 0o755) == nil {
		_ = atomicfile.Write(marker, []byte(policy.MarkerContent), 0o644)
	}
}

// policyError is an invalid or unreadable policy: every container is
// refused with it.
func policyError(path string, err error) error {
	return refuse(errFailedPrecondition, "invalid node policy, fix it and run `hardenctl policy validate %s`: %v", path, err)
}
