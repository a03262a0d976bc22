package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// CNIBin returns where scripts/e2e-tools.sh puts the CNI plugins:
// <repo>/.tools/cni/bin.
func CNIBin() string { return filepath.Join(harness.RepoRoot(), ".tools", "cni", "bin") }

// CNIPlugins are the plugins the network of WriteCNI uses (containerd
// runs loopback itself for each pod's lo).
var CNIPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// PodSubnet is the pods' network: a bridge in the run's own network
// namespace (RequirePrivateNetwork), never the host's.
const PodSubnet = "10.88.0.0/16"

// WriteCNI fills a CNI configuration directory and a plugin directory
// (what containerd's CRI plugin reads as conf_dir and bin_dirs) for pods
// with their own network namespace on a bridge: a link per plugin of
// CNIBin in binDir; host-local's leases in stateDir.
func WriteCNI(confDir, binDir, stateDir string) error {
	for _, d := range []string{confDir, binDir, stateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, p := range CNIPlugins {
		src := filepath.Join(CNIBin(), p)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("CNI plugin %s missing: run scripts/e2e-tools.sh (make conformance does)", src)
		}
		if err := os.Symlink(src, filepath.Join(binDir, p)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "hardened-e2e",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": stateDir,
					"ranges": [][]map[string]string{{{"subnet": PodSubnet}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(confDir, "10-hardened-e2e.conflist"), data, 0o600)
}

// CNIFor returns a harness BeforeStart hook that writes WriteCNI's files
// where the harness's config points containerd (<dir>/cni/conf and
// <dir>/cni/bin, next to config.toml).
func CNIFor(configPath string) error {
	dir := filepath.Dir(configPath)
	return WriteCNI(filepath.Join(dir, "cni", "conf"), filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "ipam"))
}

// HostNetnsEnv is set by scripts/netns-run.sh to the network namespace it
// left (readlink /proc/self/ns/net before unshare).
const HostNetnsEnv = "HARDENED_HOST_NETNS"

// RequirePrivateNetwork fails the test unless it runs in the network
// namespace of its own that scripts/netns-run.sh (which the make targets
// use) made: the suites create bridges, port mappings and listeners that
// must never reach the host's network.
func RequirePrivateNetwork(t testing.TB) {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("e2e: read the network namespace: %v", err)
	}
	host := os.Getenv(HostNetnsEnv)
	if host == "" || host == self {
		t.Fatalf("e2e: not in a network namespace of its own (%s, host %q): run it through its make target, which uses scripts/netns-run.sh", self, host)
	}
}
