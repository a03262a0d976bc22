package userns

import "testing"

func TestReleaseAtLeast(t *testing.T) {
	for release, want := range map[string]bool{"6.18.0-1-amd64": true, "5.19.0": true, "5.18.17": false, "4.19.0-26-amd64": false, "6.1": true, "garbage": false, "": false} {
		if got := releaseAtLeast(release, 5, 19); got != want {
			t.Errorf("releaseAtLeast(%q, 5, 19) = %v, want %v", release, got, want)
		}
	}
}
