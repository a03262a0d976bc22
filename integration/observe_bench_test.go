package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// benchPolicies: the default level restricted (seccomp.mode enforce: each
// denial is an audit record) and the same level with seccomp.mode silent
// (denials unlogged): the cost of logging is the difference.
// Each lets the benchmark's programs be bind-mounted from %[1]s.
const (
	enforcePolicy = "mode: enforce\ndefaultLevel: bench\nlevels:\n  bench:\n    extends: restricted\n    mounts:\n      allowHostPaths: [%[1]s]\n"
	silentPolicy  = "mode: enforce\ndefaultLevel: quiet\nlevels:\n  quiet:\n    extends: restricted\n    mounts:\n      allowHostPaths: [%[1]s]\n    seccomp:\n      mode: silent\n"
)

// threadsC creates and joins N threads and prints µs per thread: glibc
// tries clone3 for each (denied with ENOSYS by design, an expected probe),
// then clone.
const threadsC = `#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static void *f(void *a) { return a; }
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 20000;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); }
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000);
	return 0;
}
`

// obsFigure is one line of the observer's benchmark: without logging (the
// baseline), with it, and the ratio.
type obsFigure struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Base   float64 `json:"baseline"`
	With   float64 `json:"with"`
	Ratio  float64 `json:"ratio"`
	Detail string  `json:"detail,omitempty"`
}

func obsFig(name, unit string, base, with float64, detail string) obsFigure {
	f := obsFigure{Name: name, Unit: unit, Base: base, With: with, Detail: detail}
	if base > 0 {
		f.Ratio = with / base
	}
	return f
}

// TestBenchObserve is the observer's share of `make bench`: what logging
// denials costs a container's lifecycle, a syscall-heavy loop (allowed
// calls, denied calls, thread starts with glibc's clone3 probe), and what
// the node's observer (`hardenctl observe`, a process of its own) spends
// per record. It runs only with HARDENED_BENCH=1 and asserts nothing about
// time.
func TestBenchObserve(t *testing.T) {
	if os.Getenv("HARDENED_BENCH") != "1" {
		t.Skip("skipping: the benchmark runs with make bench (HARDENED_BENCH=1)")
	}
	require(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	policies := map[string]*runtimeoptions.Options{}
	for name, text := range map[string]string{"enforce": enforcePolicy, "silent": silentPolicy} {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(text, dir)), 0o644); err != nil {
			t.Fatal(err)
		}
		policies[name] = &runtimeoptions.Options{ConfigPath: p}
	}
	bins := buildBenchBins(t, dir)
	mount := oci.WithMounts([]specs.Mount{{Destination: "/bench", Type: "bind", Source: bins, Options: []string{"rbind", "ro"}}})
	run := func(mode string, args ...string) string {
		t.Helper()
		res, err := runContainerWith(t, ns, policies[mode], harness.Busybox, args, mount)
		if err != nil || res.Exit != 0 {
			t.Fatalf("%s %v: %+v %v", mode, args, res, err)
		}
		return strings.TrimSpace(res.Stdout)
	}
	best := func(mode string, args ...string) float64 {
		var b float64
		for range 3 {
			v, err := strconv.ParseFloat(run(mode, args...), 64)
			if err != nil {
				t.Fatal(err)
			}
			if b == 0 || v < b {
				b = v
			}
		}
		return b
	}
	runs := envInt("BENCH_RUNS", 100)
	lifecycle := func() map[string]time.Duration {
		lat := map[string][]time.Duration{}
		for i := range runs {
			order := []string{"silent", "enforce"}
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, m := range order {
				t0 := time.Now()
				run(m, "true")
				lat[m] = append(lat[m], time.Since(t0))
			}
		}
		return map[string]time.Duration{"silent": quantile(lat["silent"], 0.5), "enforce": quantile(lat["enforce"], 0.5)}
	}
	denials := strconv.Itoa(envInt("BENCH_DENIALS", 100_000))
	threads := strconv.Itoa(envInt("BENCH_THREADS", 20_000))
	calls := strconv.Itoa(envInt("BENCH_SYSCALLS", 10_000_000))
	var figs []obsFigure

	// Without an observer: the kernel alone (records go to the printk
	// rate limit and are dropped).
	lc := lifecycle()
	figs = append(figs, obsFig(fmt.Sprintf("lifecycle median (%d runs of true): silent vs enforce, no observer", runs), "ms", ms(lc["silent"]), ms(lc["enforce"]), ""))
	figs = append(figs, obsFig("getppid (allowed), silent vs enforce", "ns/call", best("silent", "/bench/getppid", calls), best("enforce", "/bench/getppid", calls), "the kernel's action cache: allowed calls never reach the filter"))
	deniedSilent := best("silent", "/bench/denied", denials)
	deniedEnforce := best("enforce", "/bench/denied", denials)
	figs = append(figs, obsFig("denied unshare, silent vs enforce, no observer", "ns/call", deniedSilent, deniedEnforce, "each enforce denial is an audit record: the kernel formats it in the calling process"))
	threadSilent := best("silent", "/bench/threads", threads)
	threadEnforce := best("enforce", "/bench/threads", threads)
	figs = append(figs, obsFig("thread create+join (glibc's clone3 probe), silent vs enforce, no observer", "µs/thread", threadSilent, threadEnforce, ""))

	// With the node's observer running. Its CPU while nothing runs here is
	// what the host's other processes cost it (it follows every fork on
	// the host): measured first and taken off. The lifecycle alternates
	// blocks with and without it, to cancel the machine's drift.
	bin := buildHardenctl(t, dir)
	o := startObserverProcess(t, bin)
	idle0, t0 := o.cpu(), time.Now()
	time.Sleep(10 * time.Second)
	idleRate := (o.cpu() - idle0) / time.Since(t0).Seconds()
	o.stop()
	const block = 10
	lat := map[bool][]time.Duration{}
	var busy float64
	for b := range 2 * max(1, runs/block) {
		with := b%2 == 1
		var ob *observerProcess
		var c0 float64
		var t1 time.Time
		if with {
			ob = startObserverProcess(t, bin)
			c0, t1 = ob.cpu(), time.Now()
		}
		for range block {
			start := time.Now()
			run("enforce", "true")
			lat[with] = append(lat[with], time.Since(start))
		}
		if with {
			busy += (ob.cpu() - c0) - idleRate*time.Since(t1).Seconds()
			ob.stop()
		}
	}
	figs = append(figs, obsFig(fmt.Sprintf("lifecycle median (%d runs of true each): enforce, without vs with the observer", len(lat[true])), "ms",
		ms(quantile(lat[false], 0.5)), ms(quantile(lat[true], 0.5)),
		fmt.Sprintf("observer CPU %.2f ms per container start (idle: %.1f ms/s for the host's other processes)", busy*1000/float64(len(lat[true])), idleRate*1000)))
	o = startObserverProcess(t, bin)
	rec0, cpu0 := o.records(t), o.cpu()
	deniedObs := best("enforce", "/bench/denied", denials)
	rec1, cpu1 := o.records(t), o.cpu()
	n, _ := strconv.Atoi(denials)
	figs = append(figs, obsFig("denied unshare, enforce: without vs with the observer", "ns/call", deniedEnforce, deniedObs,
		fmt.Sprintf("observer read %.0f of %d records, %.1f µs CPU each, %d overruns", rec1-rec0, 3*n, (cpu1-cpu0)*1e6/max(rec1-rec0, 1), o.overruns(t))))
	threadObs := best("enforce", "/bench/threads", threads)
	figs = append(figs, obsFig("thread create+join, enforce: without vs with the observer", "µs/thread", threadEnforce, threadObs, ""))
	figs = append(figs, obsFig("observer RSS after the loops", "MiB", 0, rssOf(o.cmd.Process.Pid), "hardenctl observe, a process of its own"))

	md := obsTable(figs)
	fmt.Print("\n" + md + "\n")
	if os.Getenv("BENCH_ONLY") == "" {
		out := filepath.Join(harness.RepoRoot(), "bench", "results")
		os.MkdirAll(out, 0o755)
		data, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "figures": figs}, "", "  ")
		os.WriteFile(filepath.Join(out, "observe.json"), append(data, '\n'), 0o644)
		os.WriteFile(filepath.Join(out, "observe.md"), []byte(md), 0o644)
	}
}

// buildBenchBins builds getppid, denied (static Go) and threads (static C,
// glibc) into a directory of their own and returns it.
func buildBenchBins(t *testing.T, dir string) string {
	t.Helper()
	bins := filepath.Join(dir, "bin")
	os.MkdirAll(bins, 0o755)
	for _, p := range []string{"getppid", "denied"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bins, p), "./bench/"+p)
		cmd.Dir = harness.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", p, err, out)
		}
	}
	src := filepath.Join(dir, "threads.c")
	os.WriteFile(src, []byte(threadsC), 0o644)
	if out, err := exec.Command("gcc", "-O2", "-static", "-pthread", "-o", filepath.Join(bins, "threads"), src).CombinedOutput(); err != nil {
		t.Fatalf("gcc -static threads.c (apt-get install gcc libc6-dev): %v\n%s", err, out)
	}
	return bins
}

// observerProcess is `hardenctl observe` run against the test containerd.
type observerProcess struct {
	cmd  *exec.Cmd
	addr string
}

func buildHardenctl(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "hardenctl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hardenctl")
	build.Dir = harness.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hardenctl: %v\n%s", err, out)
	}
	return bin
}

func startObserverProcess(t *testing.T, bin string) *observerProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "observe", "--listen", addr, "--address", cd.Address, "--containerd-state", cd.State)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if os.Getenv("BENCH_OBSERVER_LOG") == "" {
		cmd.Stdout = nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &observerProcess{cmd: cmd, addr: addr}
	t.Cleanup(o.stop)
	waitFor(t, "the observer's /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return o
}

// stop ends the observer (once).
func (o *observerProcess) stop() {
	if o.cmd.ProcessState == nil {
		o.cmd.Process.Kill()
		o.cmd.Wait()
	}
}

// cpu is the observer's CPU time so far, in seconds.
func (o *observerProcess) cpu() float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.cmd.Process.Pid))
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func (o *observerProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + o.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	var sum float64
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

func (o *observerProcess) records(t *testing.T) float64 {
	return o.metric(t, "hardened_observe_records_total")
}

func (o *observerProcess) overruns(t *testing.T) int {
	return int(o.metric(t, "hardened_observe_overruns_total"))
}

func obsTable(figs []obsFigure) string {
	var md strings.Builder
	md.WriteString("| figure | unit | baseline | with | ratio | note |\n| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, f := range figs {
		base, ratio := fmt.Sprintf("%.2f", f.Base), fmt.Sprintf("%.3f", f.Ratio)
		if f.Base == 0 {
			base, ratio = "—", "—"
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %.2f | %s | %s |\n", f.Name, f.Unit, base, f.With, ratio, f.Detail)
	}
	return md.String()
}
