// Package deploy holds the install manifests; its test parses them with the
// Kubernetes API types, strictly.
package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hardened-runtime/hardened/policy"
)

// kustomization is the part of kustomize's type these manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// decodeStrict decodes one YAML document into v as the API server's strict
// field validation does: unknown fields, duplicate fields and fields in
// the wrong case (hostPid for hostPID) are errors.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// objects decodes every document of every manifest below kubernetes/.
func objects(t *testing.T) map[string][]any {
	t.Helper()
	byFile := map[string][]any{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	more, _ := filepath.Glob("kubernetes/*/*.yaml")
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj any
			switch meta.Kind {
			case "RuntimeClass":
				obj = &nodev1.RuntimeClass{}
			case "DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "Namespace":
				obj = &corev1.Namespace{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "ClusterRole":
				obj = &rbacv1.ClusterRole{}
			case "ClusterRoleBinding":
				obj = &rbacv1.ClusterRoleBinding{}
			case "Kustomization":
				obj = &kustomization{}
			default:
				t.Fatalf("%s: kind %q has no type in this test", f, meta.Kind)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s: %v", f, meta.Kind, err)
			}
			byFile[f] = append(byFile[f], obj)
		}
	}
	if len(byFile) == 0 {
		t.Fatal("no manifests found")
	}
	return byFile
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestManifestsParseStrictly(t *testing.T) {
	objs := objects(t)
	// A field the API does not know is an error, as kubectl's strict
	// validation would have it.
	for _, bad := range []string{"handler: x\nhandlr: y\n", "Handler: x\n", "handler: x\nhandler: y\n"} {
		if err := decodeStrict([]byte("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\n"+bad), &nodev1.RuntimeClass{}); err == nil {
			t.Errorf("accepted: %q", bad)
		}
	}

	var rc *nodev1.RuntimeClass
	var installer, uninstaller *appsv1.DaemonSet
	var cm *corev1.ConfigMap
	for _, list := range objs {
		for _, o := range list {
			switch v := o.(type) {
			case *nodev1.RuntimeClass:
				rc = v
			case *appsv1.DaemonSet:
				if v.Name == "hardened-installer" {
					installer = v
				} else {
					uninstaller = v
				}
			case *corev1.ConfigMap:
				cm = v
			}
		}
	}
	if rc == nil || installer == nil || uninstaller == nil || cm == nil {
		t.Fatalf("missing manifests: runtimeclass %v, installer %v, uninstaller %v, configmap %v", rc != nil, installer != nil, uninstaller != nil, cm != nil)
	}
	if rc.Handler != "hardened" {
		t.Errorf("RuntimeClass handler %q, want hardened (the runtime name of the drop-in)", rc.Handler)
	}
	if rc.Overhead == nil || rc.Overhead.PodFixed.Memory().IsZero() {
		t.Error("RuntimeClass has no overhead.podFixed memory")
	}
	label := ""
	for k, v := range rc.Scheduling.NodeSelector {
		label = k + "=" + v
	}
	commands := func(ds *appsv1.DaemonSet) string {
		var all []string
		for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
			all = append(all, strings.Join(c.Command, " "))
			if !regexp.MustCompile(`:[^:/]+$`).MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a tag", ds.Name, c.Image)
			}
		}
		return strings.Join(all, "\n")
	}
	inst := commands(installer)
	if !strings.Contains(inst, "hardenctl install --root=/host") || !strings.Contains(inst, "--policy=/config/policy.yaml") {
		t.Errorf("the installer does not run hardenctl install on the host:\n%s", inst)
	}
	if !strings.Contains(inst, "label node \"$NODE_NAME\" "+label+" --overwrite") {
		t.Errorf("the installer does not set the RuntimeClass's node label %s:\n%s", label, inst)
	}
	un := commands(uninstaller)
	key, _, _ := strings.Cut(label, "=")
	if !strings.Contains(un, "hardenctl uninstall --root=/host") || !strings.Contains(un, key+"-") {
		t.Errorf("the uninstaller does not undo the install and the label:\n%s", un)
	}
	if v := installer.Spec.Template.Spec.Volumes; !slices.ContainsFunc(v, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name }) {
		t.Errorf("the installer does not mount the policy ConfigMap %s", cm.Name)
	}

	// The policy shipped to the nodes is deploy/policy.yaml, and valid.
	want, err := os.ReadFile("policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["policy.yaml"] != string(want) {
		t.Error("kubernetes/policy-configmap.yaml differs from policy.yaml")
	}
	if _, err := policy.Parse(want); err != nil {
		t.Errorf("policy.yaml: %v", err)
	}
}

// TestKustomizationsListEveryManifest: each kustomization names files that
// exist, and every manifest beside it is listed.
func TestKustomizationsListEveryManifest(t *testing.T) {
	for _, k := range []string{"kubernetes/kustomization.yaml", "kubernetes/uninstall/kustomization.yaml"} {
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		var kz kustomization
		if err := decodeStrict(data, &kz); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if kz.APIVersion != "kustomize.config.k8s.io/v1beta1" || kz.Kind != "Kustomization" {
			t.Errorf("%s: %s %s", k, kz.APIVersion, kz.Kind)
		}
		dir := filepath.Dir(k)
		beside, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range beside {
			if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kz.Resources, base) {
				t.Errorf("%s does not list %s", k, base)
			}
		}
		for _, r := range kz.Resources {
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
	}
}
