// Package profiles holds the hardening levels as data: which user a container
// runs as, which capabilities it keeps, which seccomp and AppArmor profiles it
// gets, which paths stay writable, and for every control whether a violation
// is fixed or refused.
//
// The built-in levels (baseline, restricted, strict) are embedded YAML files
// under levels/; a node policy can add its own levels that extend them. The
// seccomp profiles are derived from github.com/moby/profiles/seccomp, the
// profile runc and containerd users know as RuntimeDefault, so they track it
// rather than a hand-typed list.
//
// The package is pure: it reads no host state except through the moby
// profile's kernel-version conditions.
package profiles
