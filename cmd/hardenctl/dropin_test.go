package main

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/hardened-runtime/hardened/policy"
)

// TestDropInConfig: a policy at the shim's default path gives the runtime
// no options table (containerd's CRI plugin cannot start a hostUsers:
// false pod on a non-runc runtime with options); a policy elsewhere gets
// ConfigPath. Both are valid TOML of that shape.
func TestDropInConfig(t *testing.T) {
	type runtime struct {
		RuntimeType string         `toml:"runtime_type"`
		RuntimePath string         `toml:"runtime_path"`
		Options     map[string]any `toml:"options"`
	}
	parse := func(data []byte) runtime {
		t.Helper()
		var cfg struct {
			Version int
			Plugins map[string]struct {
				Containerd struct{ Runtimes map[string]runtime }
			}
		}
		if err := toml.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("drop-in is not TOML: %v\n%s", err, data)
		}
		rt, ok := cfg.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes["hardened"]
		if cfg.Version != 3 || !ok || rt.RuntimeType != "io.containerd.hardened.v2" || rt.RuntimePath != "/usr/local/bin/containerd-shim-hardened-v2" {
			t.Fatalf("drop-in %+v:\n%s", cfg, data)
		}
		return rt
	}
	def := dropInConfig("hardened", "/usr/local/bin/containerd-shim-hardened-v2", policy.DefaultPath)
	if rt := parse(def); rt.Options != nil || strings.Contains(string(def), "ConfigPath =") {
		t.Errorf("default policy path: options %v, want none:\n%s", rt.Options, def)
	}
	other := dropInConfig("hardened", "/usr/local/bin/containerd-shim-hardened-v2", "/srv/hardened/policy.yaml")
	if rt := parse(other); rt.Options["ConfigPath"] != "/srv/hardened/policy.yaml" {
		t.Errorf("other policy path: options %v, want ConfigPath:\n%s", rt.Options, other)
	}
}
