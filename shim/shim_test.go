package shim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

func TestDecodeOptions(t *testing.T) {
	cri, _ := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: "/etc/hardened/p.yaml"})
	runc, _ := typeurl.MarshalAnyToProto(&runcoptions.Options{SystemdCgroup: true})
	other, _ := anypb.New(durationpb.New(5))

	got, err := decodeOptions(cri)
	if err != nil || got.PolicyPath != "/etc/hardened/p.yaml" || got.Runc != nil {
		t.Errorf("runtimeoptions: %+v %v; want the policy path and no options for runc (it panics on this type)", got, err)
	}
	got, err = decodeOptions(runc)
	if err != nil || got.PolicyPath != "" || got.Runc != runc {
		t.Errorf("runc options: %+v %v; want them passed through", got, err)
	}
	got, err = decodeOptions(nil)
	if err != nil || got.Runc != nil || got.PolicyPath != "" {
		t.Errorf("nil: %+v %v", got, err)
	}
	if _, err := decodeOptions(other); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("other type: %v, want an error", err)
	}
	if _, err := decodeOptions(&anypb.Any{TypeUrl: "nope", Value: []byte{1}}); err == nil {
		t.Error("undecodable options accepted")
	}
}

func TestWithOwnSocketDir(t *testing.T) {
	dir := "/run/containerd/s"
	p := withOwnSocketDir(&bootapi.BootstrapParams{InstanceID: "x", SocketDir: &dir})
	if p.GetSocketDir() != "/run/containerd/s/hardened" || dir != "/run/containerd/s" {
		t.Errorf("socket dir %q (input %q)", p.GetSocketDir(), dir)
	}
	if p := withOwnSocketDir(&bootapi.BootstrapParams{}); !strings.HasSuffix(p.GetSocketDir(), "/s/hardened") {
		t.Errorf("default socket dir %q", p.GetSocketDir())
	}
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	if _, err := readSpec(dir); err == nil {
		t.Error("missing config.json accepted")
	}
	for content, want := range map[string]string{
		`{"process":{"args":["sh"]},"bogus":1}`: "unknown field",
		`{"process":`:                           "unexpected EOF",
		`{} {}`:                                 "trailing data",
	} {
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o644)
		if _, err := readSpec(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readSpec(%s) = %v, want %q", content, err, want)
		}
	}
}

// TestPipelineHugeAndBroken: a large spec is hardened like any other;
// one over the size limit, or a broken one, is refused with config.json
// left as it was.
func TestPipelineHugeAndBroken(t *testing.T) {
	e := newTestEnv(t)
	s := loadTestSpec(t)
	for i := range 50_000 {
		s.Process.Env = append(s.Process.Env, fmt.Sprintf("VAR_%d=%s", i, strings.Repeat("x", 40)))
	}
	s.Linux.CgroupsPath = "/" + testNS + "/h0" // the case that must run
	huge, _ := json.Marshal(s)
	for i, tc := range []struct {
		name    string
		config  []byte
		limit   int64
		wantErr string
	}{
		{"huge", huge, 16 << 20, ""},
		{"over the limit", huge, 1 << 20, "more than the 1048576 a spec may have"},
		{"truncated", huge[:len(huge)/2], 16 << 20, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxSpecSize = tc.limit
			defer func() { maxSpecSize = 16 << 20 }()
			id := fmt.Sprintf("h%d", i)
			bundle := e.bundle(testNS, id, e.image, nil)
			os.WriteFile(filepath.Join(bundle, "config.json"), tc.config, 0o644)
			rec, err := e.run(e.pipeline("create"), testNS, id, bundle)
			if tc.wantErr == "" {
				if err != nil || rec.ConfigDigest == "" {
					t.Fatalf("rec %v err %v", rec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			after, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if !bytes.Equal(after, tc.config) {
				t.Error("config.json changed")
			}
		})
	}
}

func TestHostNamespace(t *testing.T) {
	p := newHostProbe("")
	h := p.host("hardened-default")
	if !h.IsHostNamespace(specs.NetworkNamespace, "/proc/self/ns/net") {
		t.Error("our own network namespace is not the host's")
	}
	if !h.IsHostNamespace(specs.NetworkNamespace, "/nonexistent") {
		t.Error("an unreadable namespace path must count as the host's (fail closed)")
	}
	if h.IsHostNamespace(specs.TimeNamespace, "/proc/self/ns/time") {
		t.Error("a namespace type without a reference counts as the host's")
	}
	if h.ResolvePath("/nonexistent/x") != "/nonexistent/x" {
		t.Error("ResolvePath changed a missing path")
	}
	link := filepath.Join(t.TempDir(), "sock")
	os.Symlink("/", link)
	if h.ResolvePath(link) != "/" {
		t.Errorf("ResolvePath(%s) = %s, want /", link, h.ResolvePath(link))
	}
	if p.profileLoaded("hardened-default") && !h.AppArmor {
		t.Error("profile loaded but AppArmor false")
	}
}

func TestRuleList(t *testing.T) {
	if got := ruleList([]string{"user", "seccomp", "user"}); got != " (rules: seccomp, user)" {
		t.Errorf("ruleList = %q", got)
	}
	if ruleList(nil) != "" {
		t.Error("ruleList(nil) not empty")
	}
}

func TestImageFactsCache(t *testing.T) {
	c := imageCache(filepath.Join(t.TempDir(), "images"))
	d := digest.FromString("manifest")
	if _, ok := c.load(d); ok {
		t.Fatal("empty cache hit")
	}
	c.store(d, imageFacts{User: "app", Volumes: []string{"/data"}})
	f, ok := c.load(d)
	if !ok || f.User != "app" || f.Volumes[0] != "/data" {
		t.Errorf("cached = %+v %v", f, ok)
	}
	if _, ok := c.load(digest.Digest("sha256:../../etc/passwd")); ok {
		t.Error("an invalid digest reached the file system")
	}
	off := imageCache("")
	off.store(d, imageFacts{})
	if _, ok := off.load(d); ok {
		t.Error("disabled cache hit")
	}
	t.Setenv(CacheDirEnv, "off")
	if imageCacheDir() != "" || verdictCacheDir() != "" {
		t.Error("off does not disable the caches")
	}
	t.Setenv(CacheDirEnv, "")
	if imageCacheDir() != "/run/hardened/images" || verdictCacheDir() != "/run/hardened/verdicts" {
		t.Error("default cache directories")
	}
}

// TestReadRecord: Create trusts a record only for the config.json it was
// written with, under the same policy file; a refusal stands as it is.
func TestReadRecord(t *testing.T) {
	bundle := t.TempDir()
	config := []byte(`{"ociVersion":"1.2.0"}`)
	sum := sha256.Sum256(config)
	write := func(rec record, config []byte) {
		t.Helper()
		data, _ := json.Marshal(rec)
		if err := os.WriteFile(filepath.Join(bundle, RecordFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	level, _ := policy.Default().Level("restricted")
	good := record{Version: recordVersion, Level: "restricted", LevelData: level, PolicyPath: "/etc/hardened/policy.yaml", ConfigDigest: hex.EncodeToString(sum[:]), By: "shim start",
		Signature: &verdict.Verdict{Scope: "default", Builtin: true}}
	for _, tc := range []struct {
		name   string
		rec    func(record) record
		config []byte
		path   string
		want   bool
	}{
		{"as written", func(r record) record { return r }, config, good.PolicyPath, true},
		{"config changed since", func(r record) record { return r }, []byte(`{"ociVersion":"1.2.0","process":{}}`), good.PolicyPath, false},
		{"other policy file", func(r record) record { return r }, config, "/other.yaml", false},
		{"other version", func(r record) record { r.Version = 1; return r }, config, good.PolicyPath, false},
		{"no digest", func(r record) record { r.ConfigDigest = ""; return r }, config, good.PolicyPath, false},
		{"no signature verdict", func(r record) record { r.Signature = nil; return r }, config, good.PolicyPath, false},
		{"no level", func(r record) record { r.LevelData = nil; return r }, config, good.PolicyPath, false},
		{"level data of another level", func(r record) record { r.Level = "baseline"; return r }, config, good.PolicyPath, false},
		{"a refusal", func(r record) record { r.Refusal = refuse(errFailedPrecondition, "no"); r.ConfigDigest = ""; return r }, []byte("x"), good.PolicyPath, true},
	} {
		write(tc.rec(good), tc.config)
		if _, ok := readRecord(bundle, tc.path); ok != tc.want {
			t.Errorf("%s: readRecord = %v, want %v", tc.name, ok, tc.want)
		}
	}
	os.WriteFile(filepath.Join(bundle, RecordFile), []byte("{"), 0o644)
	if _, ok := readRecord(bundle, good.PolicyPath); ok {
		t.Error("readRecord of a broken record = true")
	}
	os.Remove(filepath.Join(bundle, RecordFile))
	if _, ok := readRecord(bundle, good.PolicyPath); ok {
		t.Error("readRecord without a record = true")
	}
	write(good, config)
	os.Remove(filepath.Join(bundle, "config.json"))
	if _, ok := readRecord(bundle, good.PolicyPath); ok {
		t.Error("readRecord without config.json = true")
	}
}

// TestLevelDataRoundTrip: execs and updates are judged by the level the
// record carries, so every built-in level must survive the record's JSON.
func TestLevelDataRoundTrip(t *testing.T) {
	pol := policy.Default()
	for _, name := range pol.LevelNames() {
		l, _ := pol.Level(name)
		data, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back profiles.Level
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(l, &back, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("level %s after the record's JSON (-want +got):\n%s", name, diff)
		}
	}
}
