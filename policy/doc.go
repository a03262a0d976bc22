// Package policy reads the node policy file: which hardening level applies
// to which workload, and whether violations are fixed (enforce) or only
// recorded (audit).
//
// The file (default /etc/hardened/policy.yaml) is YAML, parsed strictly:
// unknown keys are errors with line numbers. Without a file the built-in
// default applies: level restricted, mode enforce.
//
//	mode: enforce            # or audit: record violations, change nothing, refuse nothing
//	defaultLevel: restricted # a built-in level or one defined below
//	levels:                  # extra levels; `extends` a built-in or an earlier level
//	  web:
//	    extends: restricted
//	    description: restricted + writable nginx cache
//	    rootfs:
//	      writablePaths: [/var/cache/nginx]
//	rules:                   # first match wins
//	  - name: system pods
//	    match:
//	      kubernetesNamespaces: [kube-system]     # globs (path.Match)
//	      containerdNamespaces: [k8s.io]
//	      images: ["registry.example.com/web/**"] # a trailing /** matches any depth below
//	    level: baseline
//	    mode: audit                               # optional per-rule override
//	    allowAnnotationLevels: [baseline]         # looser levels the hardened.dev/level annotation may pick
//
// All match fields of a rule must match; an empty field matches anything.
// The annotation hardened.dev/level may always select a built-in level that
// is stricter than the one the rules picked; a looser or policy-defined one
// only when the matched rule lists it in allowAnnotationLevels.
package policy
