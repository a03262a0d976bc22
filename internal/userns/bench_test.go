package userns

import "testing"

// BenchmarkReserveRelease is one container's way through the allocator:
// its range reserved, then released.
func BenchmarkReserveRelease(b *testing.B) {
	a := &Allocator{Dir: b.TempDir(), First: DefaultFirst, Length: DefaultLength, Etc: "/etc"}
	for i := 0; b.Loop(); i++ {
		o := Owner{Namespace: "default", ID: "c"}
		if _, err := a.Reserve(o); err != nil {
			b.Fatal(err)
		}
		if err := a.Release(o); err != nil {
			b.Fatal(err)
		}
	}
}
