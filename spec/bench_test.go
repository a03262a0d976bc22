package spec

import (
	"testing"
)

// BenchmarkHarden hardens a CRI pod container spec (RuntimeDefault seccomp
// with three architectures, the pod's namespaces, kubelet mounts) under the
// restricted level: the shim's per-Create cost.
func BenchmarkHarden(b *testing.B) {
	s := readSpec(b, "cri-container")
	l := level(b, "restricted")
	in := withFacts("cri-container", Inputs{Host: Host{UnprivilegedPortSysctl: true}, Image: ImageInfo{Volumes: []string{"/data"}}})
	if _, err := Harden(s, l, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Harden(s, l, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHardenHardened hardens an already hardened spec: the cost of
// comparing a workload's own seccomp profile with the level's.
func BenchmarkHardenHardened(b *testing.B) {
	l := level(b, "restricted")
	in := withFacts("cri-container", Inputs{Host: Host{UnprivilegedPortSysctl: true}})
	res, err := Harden(readSpec(b, "cri-container"), l, in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Harden(res.Spec, l, in); err != nil {
			b.Fatal(err)
		}
	}
}
