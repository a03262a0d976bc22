// Command hardenctl shows and tests what the hardened runtime does: harden or
// check a config.json under a level, list and export the levels, validate a
// node policy.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}
