package policy

import (
	"os"
	"testing"
)

// FuzzParse feeds policy files (seeded with the example) to Parse.
// Invariants: no panic; a parsed policy validates and resolves any
// workload to a level without panicking.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("mode: audit\n"))
	f.Add([]byte("levels:\n  a:\n    extends: b\n  b:\n    extends: restricted\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted a policy that does not validate: %v", err)
		}
		for _, w := range []Workload{
			{},
			{KubernetesNamespace: "kube-system", ContainerdNamespace: "k8s.io", Image: "docker.io/library/nginx:1"},
			{Annotations: map[string]string{LevelAnnotation: "strict"}},
		} {
			d, err := p.Resolve(w)
			if err == nil && d.Level == nil {
				t.Fatal("Resolve returned no level and no error")
			}
		}
	})
}
