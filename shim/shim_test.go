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
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

func imageInfo() spec.ImageInfo { return spec.ImageInfo{Name: "example.com/app:1"} }

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

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	os.WriteFile(file, []byte("old"), 0o600)
	if err := writeFileAtomic(file, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	fi, _ := os.Stat(file)
	if string(data) != "new" || fi.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", data, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
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

// TestHardenBundleHugeAndBroken: a large spec is hardened like any other;
// one over the size limit, or a broken one, is refused with config.json
// left as it was and no record written.
func TestHardenBundleHugeAndBroken(t *testing.T) {
	in, err := os.ReadFile("../spec/testdata/ctr-run.in.json")
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(in, &s); err != nil {
		t.Fatal(err)
	}
	for i := range 50_000 {
		s.Process.Env = append(s.Process.Env, fmt.Sprintf("VAR_%d=%s", i, strings.Repeat("x", 40)))
	}
	huge, _ := json.Marshal(&s)
	pol := policy.Default()
	for _, tc := range []struct {
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
			bundle := t.TempDir()
			os.WriteFile(filepath.Join(bundle, "config.json"), tc.config, 0o644)
			spec, err := readSpec(bundle)
			if err == nil {
				_, err = hardenBundle(pol, "policy.yaml", newHostProbe(""), "default", bundle, spec, imageRecord{ImageInfo: imageInfo()}, nil, "create", nil)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(bundle, RecordFile)); err != nil {
					t.Error("no record written")
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
			if _, err := os.Stat(filepath.Join(bundle, RecordFile)); err == nil {
				t.Error("a record was written")
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
	if policyPath("/x") != "/x" {
		t.Error("the options' path must win")
	}
	t.Setenv(PolicyEnv, "/env")
	if policyPath("") != "/env" {
		t.Error("the environment must come next")
	}
}

func TestImageFactsCache(t *testing.T) {
	r := &imageResolver{cacheDir: filepath.Join(t.TempDir(), "images")}
	d := digest.FromString("manifest")
	if _, ok := r.cached(d); ok {
		t.Fatal("empty cache hit")
	}
	r.store(d, imageFacts{User: "app", Volumes: []string{"/data"}})
	f, ok := r.cached(d)
	if !ok || f.User != "app" || f.Volumes[0] != "/data" {
		t.Errorf("cached = %+v %v", f, ok)
	}
	if _, ok := r.cached(digest.Digest("sha256:../../etc/passwd")); ok {
		t.Error("an invalid digest reached the file system")
	}
	off := &imageResolver{}
	off.store(d, imageFacts{})
	if _, ok := off.cached(d); ok {
		t.Error("disabled cache hit")
	}
	t.Setenv(CacheDirEnv, "off")
	if imageCacheDir() != "" {
		t.Error("off does not disable the cache")
	}
}

func TestFromBundle(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := fromBundle(dir); ok || err != nil {
		t.Errorf("no file: ok %v err %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, ImageFile), []byte(`{"Name":"hardened.test/busybox:latest","Volumes":["/data"]}`), 0o644)
	img, ok, err := fromBundle(dir)
	if !ok || err != nil || img.Name != "hardened.test/busybox:latest" || img.Volumes[0] != "/data" {
		t.Errorf("fromBundle = %+v %v %v", img, ok, err)
	}
	os.WriteFile(filepath.Join(dir, ImageFile), []byte(`{`), 0o644)
	if _, _, err := fromBundle(dir); err == nil {
		t.Error("a corrupt file was accepted")
	}
}

// TestPreparedRecord: Create trusts what `shim start` did only for the
// config.json it wrote, under the same policy file.
func TestPreparedRecord(t *testing.T) {
	bundle := t.TempDir()
	config := []byte(`{"ociVersion":"1.2.0"}`)
	sum := sha256.Sum256(config)
	write := func(rec record, config []byte) {
		t.Helper()
		if err := writeJSONAtomic(filepath.Join(bundle, RecordFile), rec); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := record{Level: "restricted", PolicyPath: "/etc/hardened/policy.yaml", ConfigDigest: hex.EncodeToString(sum[:]), By: "start",
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
		{"written by create", func(r record) record { r.By = "create"; return r }, config, good.PolicyPath, false},
		{"no digest", func(r record) record { r.ConfigDigest = ""; return r }, config, good.PolicyPath, false},
		{"no signature verdict", func(r record) record { r.Signature = nil; return r }, config, good.PolicyPath, false},
	} {
		write(tc.rec(good), tc.config)
		if _, ok := preparedRecord(bundle, tc.path); ok != tc.want {
			t.Errorf("%s: preparedRecord = %v, want %v", tc.name, ok, tc.want)
		}
	}
	os.Remove(filepath.Join(bundle, RecordFile))
	if _, ok := preparedRecord(bundle, good.PolicyPath); ok {
		t.Error("preparedRecord without a record = true")
	}
}
