package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

// readSpecFile reads a config.json strictly: unknown fields and trailing
// data are errors that name the file, the line and the column.
func readSpecFile(name string, stdin io.Reader) (*specs.Spec, []byte, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
		name = "stdin"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s specs.Spec
	if err := dec.Decode(&s); err != nil {
		return nil, nil, fmt.Errorf("%s: %s", name, describeJSONError(data, dec, err))
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%s:%s: trailing data after the spec", name, position(data, dec.InputOffset()))
	}
	return &s, data, nil
}

func describeJSONError(data []byte, dec *json.Decoder, err error) string {
	var offset int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		offset = e.Offset
	case *json.UnmarshalTypeError:
		offset = e.Offset
	default:
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			offset = dec.InputOffset()
		}
	}
	if offset < 0 {
		return err.Error()
	}
	return position(data, offset) + ": " + strings.TrimPrefix(err.Error(), "json: ")
}

// position renders a byte offset as line:column.
func position(data []byte, offset int64) string {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// specJSON renders a spec the way the shim writes it, indented for people.
func specJSON(s *specs.Spec) ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	return append(data, '\n'), err
}

// writeAtomic writes data to file through a temporary file and a rename.
func writeAtomic(file string, data []byte) error { return atomicfile.Write(file, data, 0o644) }
