package shim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

// maxSpecSize bounds config.json: the shim holds a few copies of the spec
// in memory while it works, and a real one is a few KiB (with every
// environment variable of a large pod, well under 1 MiB).
var maxSpecSize int64 = 16 << 20

// readSpec reads <bundle>/config.json strictly: unknown fields are an
// error rather than silently dropped when the spec is written back.
func readSpec(bundle string) (*specs.Spec, error) {
	file := filepath.Join(bundle, "config.json")
	if fi, err := os.Stat(file); err == nil && fi.Size() > maxSpecSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a spec may have here", file, fi.Size(), maxSpecSize)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s specs.Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the spec", file)
	}
	return &s, nil
}

// writeFileAtomic replaces a file in the bundle atomically.
func writeFileAtomic(file string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(file, data, perm)
}

func writeJSONAtomic(file string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(file, data, 0o644)
}
