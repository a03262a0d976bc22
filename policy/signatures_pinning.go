package policy

// Pinning: a scope may refuse containers created from a reference that can
// move (a tag such as latest) or require a digest reference. It is decided
// from the reference the container was created from (for a Kubernetes pod,
// the image the pod spec names, as CRI records it) and the digest that runs,
// with no registry: the shim can decide it before any verdict is looked up.

import (
	"fmt"
	"path"
	"strings"
)

// PinningError is a refusal by a pinned requirement: why, and how to pin.
type PinningError struct {
	// Reason names the reference, the tag and the knob that refused it.
	Reason string
	// Fix is the pinned reference to use instead.
	Fix string
}

func (e *PinningError) Error() string { return e.Reason + "; fix: " + e.Fix }

// DefaultMovingTags are the tags a pinned requirement without
// requireDigest or movingTags refuses.
var DefaultMovingTags = []string{"latest"}

// CheckPinning checks the scope's pinned requirements against reference,
// the reference the container was created from, given the digests that
// run (the image record's, and for an index the platform manifest's). A
// reference by digest must name one of them. It returns a *PinningError
// for a refusal.
func (sc Scope) CheckPinning(reference string, digests ...string) error {
	var pins []Requirement
	for _, r := range sc.Requirements {
		if r.Type == Pinned {
			pins = append(pins, r)
		}
	}
	if len(pins) == 0 {
		return nil
	}
	run := ""
	for _, d := range digests {
		if d != "" {
			run = d
			break
		}
	}
	ref, err := parseMatchRef(reference)
	if err != nil {
		return &PinningError{Reason: fmt.Sprintf("%s requires a pinned reference, and the container was created from %v", sc.Field(), err), Fix: pinnedFix(reference, run)}
	}
	if ref.Digest != "" {
		for _, d := range digests {
			if d != "" && d == ref.Digest {
				return nil
			}
		}
		return &PinningError{Reason: fmt.Sprintf("created from %s, but the image that runs is %s", reference, run),
			Fix: "create the container from the digest the reference names"}
	}
	for _, r := range pins {
		if r.RequireDigest {
			return &PinningError{Reason: fmt.Sprintf("created from %s, a reference by tag, and %s requires a digest (pinned: requireDigest)", reference, sc.Field()), Fix: pinnedFix(reference, run)}
		}
		tag, implicit := ref.Tag, ""
		if tag == "" {
			tag, implicit = "latest", " (no tag: latest)"
		}
		moving := r.MovingTags
		if len(moving) == 0 {
			moving = DefaultMovingTags
		}
		for _, g := range moving {
			if ok, _ := path.Match(g, tag); ok {
				return &PinningError{Reason: fmt.Sprintf("created from %s%s, and tag %q moves (%s pinned: movingTags %s)", reference, implicit, tag, sc.Field(), strings.Join(moving, ", ")),
					Fix: pinnedFix(reference, run) + " or a tag that is never moved"}
			}
		}
	}
	return nil
}

// pinnedFix says how to pin: the repository at the digest that runs.
func pinnedFix(reference, d string) string {
	repo := reference
	if r, err := parseMatchRef(reference); err == nil {
		repo = r.Name()
	}
	if d == "" {
		d = "sha256:…"
	}
	return fmt.Sprintf("create the container from its digest, %s@%s (in a pod spec: image: %s@%s)", repo, d, repo, d)
}
