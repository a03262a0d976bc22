// Command nnp stands in for registry.k8s.io/e2e-test-images/nonewprivs:
// installed set-uid root, it prints its effective uid, which is 0 unless
// the process runs with no_new_privs.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
