package shim

import (
	"context"
	"testing"
)

// BenchmarkPipeline is the pipeline of a container joining a pod, in a
// warm shim, against containerd's services served in process.
func BenchmarkPipeline(b *testing.B) {
	e := newTestEnv(b)
	e.fake.addSandbox("sb1", "uid-1", "web")
	bundle := e.bundle(testNS, "app", e.image, criSpec("container", "sb1", "uid-1", "web"))
	e.fake.containers["app"].Sandbox = "sb1"
	p := e.pipeline("create")
	orig := readBundleSpec(e.t, bundle)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := p.run(context.Background(), request{Namespace: testNS, ID: "app", Bundle: bundle, Policy: e.policy}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		writeTestSpec(e.t, bundle, orig)
		b.StartTimer()
	}
}
