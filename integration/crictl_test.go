package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/shim"
)

// crictlPath is where scripts/cri-tools.sh puts crictl (make demo builds
// it).
func crictlPath() string {
	return filepath.Join(harness.RepoRoot(), ".tools", "cri-tools", "bin", "crictl")
}

// crictl runs crictl against the tests' containerd, as an admin on a node
// would against /run/containerd/containerd.sock (its config, crictl.yaml,
// in dir), and echoes the command and its output to w. It returns stdout;
// when crictl fails, the error ends with its last line of stderr.
func crictl(t *testing.T, w io.Writer, dir string, args ...string) (string, error) {
	t.Helper()
	config := filepath.Join(dir, "crictl.yaml")
	if _, err := os.Stat(config); err != nil {
		data := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", cd.Address, cd.Address)
		if err := os.WriteFile(config, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, crictlPath(), append([]string{"--config", config}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimRight(stdout.String(), "\n")
	fmt.Fprintf(w, "$ crictl %s\n", strings.Join(args, " "))
	if out != "" {
		fmt.Fprintln(w, out)
	}
	if err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		// crictl logs with logrus: time="..." level=fatal msg="...".
		if m := logrusMsg.FindStringSubmatch(last); m != nil {
			if msg, err := strconv.Unquote(m[1]); err == nil {
				last = msg
			}
		}
		fmt.Fprintln(w, "  "+last)
		return out, fmt.Errorf("%w: %s", err, last)
	}
	return out, nil
}

var logrusMsg = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*")`)

// demoCrictl shows the hardened handler through crictl, as a Kubernetes
// user debugging a node would meet it: a pod and a container on each
// handler, exec, inspect, and a refused container. The tests' containerd
// has no CNI, so the pods use the host network (namespace hostnet-*, which
// the tests' policy allows for that); on a node they would not.
func demoCrictl(t *testing.T, w io.Writer) {
	if _, err := os.Stat(crictlPath()); err != nil {
		fmt.Fprintf(w, "(crictl not built: run scripts/cri-tools.sh crictl, as make demo does)\n")
		return
	}
	dir := t.TempDir()
	write := func(name string, v any) string {
		data, _ := json.MarshalIndent(v, "", "  ")
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pod := func(handler string) string {
		return write("pod-"+handler+".json", map[string]any{
			"metadata":      map[string]string{"name": "demo-" + handler, "namespace": "hostnet-demo", "uid": fmt.Sprintf("demo-%s-%d", handler, seq.Add(1))},
			"log_directory": dir,
			"linux":         map[string]any{"security_context": map[string]any{"namespace_options": map[string]int{"network": 2}}},
		})
	}
	container := write("container.json", map[string]any{
		"metadata": map[string]string{"name": "app"},
		"image":    map[string]string{"image": harness.Busybox},
		"command":  []string{"sleep", "3600"},
		"log_path": "app.log",
	})
	admin := write("admin.json", map[string]any{
		"metadata": map[string]string{"name": "admin"},
		"image":    map[string]string{"image": harness.Busybox},
		"command":  []string{"sleep", "3600"},
		"linux":    map[string]any{"security_context": map[string]any{"capabilities": map[string]any{"add_capabilities": []string{"SYS_ADMIN"}}}},
	})
	fmt.Fprintf(w, "== The same pod through the CRI, as the kubelet runs it, with crictl (%s) ==\n\n", crictlPath())
	for _, handler := range []string{"runc", "hardened"} {
		fmt.Fprintf(w, "-- runtime handler %s --\n", handler)
		podFile := pod(handler)
		podID, err := crictl(t, w, dir, "runp", "--runtime", handler, podFile)
		if err != nil {
			t.Errorf("crictl runp --runtime %s: %v", handler, err)
			continue
		}
		t.Cleanup(func() {
			crictl(t, io.Discard, dir, "stopp", podID)
			crictl(t, io.Discard, dir, "rmp", "-f", podID)
		})
		id, err := crictl(t, w, dir, "create", podID, container, podFile)
		if err == nil {
			_, err = crictl(t, w, dir, "start", id)
		}
		if err != nil {
			t.Errorf("crictl create/start on %s: %v", handler, err)
			continue
		}
		out, err := crictl(t, w, dir, "exec", id, "id")
		want := "uid=0(root)"
		if handler == "hardened" {
			want = "uid=65534(nobody)"
		}
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("crictl exec id on %s = %q, %v; want %s", handler, out, err, want)
		}
		crictl(t, w, dir, "exec", id, "sh", "-c", "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status")
		out, err = crictl(t, io.Discard, dir, "inspect", "--output", "json", id)
		var info struct {
			Status struct{ State string }
			Info   struct {
				RuntimeType string
				Pid         int
			}
		}
		if err == nil {
			err = json.Unmarshal([]byte(out), &info)
		}
		fmt.Fprintf(w, "$ crictl inspect %s   # state %s, runtimeType %s, pid %d\n", id[:13], info.Status.State, info.Info.RuntimeType, info.Info.Pid)
		if err != nil || info.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("crictl inspect on %s: %v, %+v", handler, err, info)
		}
		if handler == "hardened" {
			// Refused when it starts (the shim sees a container first at
			// task create): the line kubectl describe would show.
			aid, err := crictl(t, w, dir, "create", podID, admin, podFile)
			if err == nil {
				_, err = crictl(t, w, dir, "start", aid)
			}
			// crictl sends no masked paths (the kubelet does), so all
			// capabilities of a privileged container are refused as one.
			if err == nil || !strings.Contains(err.Error(), "refused by level") {
				t.Errorf("container adding CAP_SYS_ADMIN on hardened: %v; want a refusal", err)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "crictl inspect shows the spec containerd stored (info.runtimeSpec), as the pod asked for it; the spec\n"+
		"runc ran is the hardened one in the bundle (config.json, with %s).\n\n", shim.RecordFile)
}
