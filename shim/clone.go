package shim

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

type anypbAny = anypb.Any

// deepCopySpec copies a spec through JSON (audit mode only).
func deepCopySpec(s *specs.Spec) *specs.Spec {
	data, _ := json.Marshal(s)
	var c specs.Spec
	_ = json.Unmarshal(data, &c)
	return &c
}
