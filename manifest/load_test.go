package manifest_test

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/manifest"
)

const workflow = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: go test ./...\n"

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web
`

func notes(in *manifest.Input) string {
	var s []string
	for _, n := range in.Notes {
		s = append(s, n.String())
	}
	return strings.Join(s, "\n")
}

// Empty input must never pass a gate: every path that yields no object is
// one error naming the path.
func TestLoadNothingToJudge(t *testing.T) {
	empty := t.TempDir()
	ci := testutil.WriteTree(t, map[string]string{".github/workflows/ci.yml": workflow, "ci.yml": workflow})
	blank := testutil.WriteTree(t, map[string]string{"blank.yaml": "\n# nothing\n"})
	for _, c := range []struct {
		name, path, stdin, want string
	}{
		{"empty dir", empty, "", empty + ": nothing to judge: no YAML or JSON file in the directory"},
		{"empty stdin", "-", "", "-: nothing to judge: standard input is empty"},
		{"blank stdin", "-", " \n\n", "-: nothing to judge: standard input is empty"},
		{"stdin of comments", "-", "# helm rendered nothing\n---\n", "-: nothing to judge: standard input holds no Kubernetes object"},
		{"only a GitHub Actions workflow", ci, "", ci + ": nothing to judge: no Kubernetes object in the directory (1 skipped, see the notes)"},
		{"a workflow given as a file", filepath.Join(ci, "ci.yml"), "", filepath.Join(ci, "ci.yml") + ": nothing to judge: no Kubernetes object in the file (1 skipped"},
		{"a file of comments", filepath.Join(blank, "blank.yaml"), "", "blank.yaml: nothing to judge: no Kubernetes object in the file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := manifest.Read([]string{c.path}, strings.NewReader(c.stdin))
			if err == nil || len(in.Objects) != 0 {
				t.Fatalf("objects %d, err %v: want nothing to judge", len(in.Objects), err)
			}
			errs := manifest.Errors(err)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) || strings.Contains(errs[0].Error(), "\n") {
				t.Fatalf("errors %q, want one line containing %q", errs, c.want)
			}
		})
	}
	// One empty path among good ones is still an error: the gate was given it.
	objs, err := manifest.Load([]string{empty, "-"}, strings.NewReader(deployment))
	if len(objs) != 1 || err == nil || !strings.Contains(err.Error(), empty+": nothing to judge") {
		t.Fatalf("objects %d, err %v", len(objs), err)
	}
}

// YAML that is not a Kubernetes object is skipped with a note, and an
// unusable document does not hide the good ones beside it.
func TestLoadSkipsNonObjectsAndKeepsGoodDocuments(t *testing.T) {
	dir := testutil.WriteTree(t, map[string]string{
		"ci.yml":           workflow,
		"chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"web.yaml":         deployment,
	})
	in, err := manifest.Read([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Objects) != 1 || in.Objects[0].Name != "web" {
		t.Fatalf("objects %+v", in.Objects)
	}
	n := notes(in)
	for _, want := range []string{
		filepath.Join(dir, "ci.yml") + ":1: document 0: skipped: not a Kubernetes object (no apiVersion or kind)",
		filepath.Join(dir, "chart", "Chart.yaml") + ":1: document 0: skipped: not a Kubernetes object (apiVersion v2 but no kind)",
	} {
		if !strings.Contains(n, want) {
			t.Errorf("notes %q lack %q", n, want)
		}
	}

	bad := testutil.WriteTree(t, map[string]string{
		"a-good.yaml":  deployment,
		"b-bad.yaml":   "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: [\n",
		"c-typed.yaml": strings.Replace(deployment, "replicas: 2", "replicas: two", 1),
		"d-good.yaml":  strings.Replace(deployment, "name: web\n", "name: api\n", 1),
	})
	objs, err := manifest.Load([]string{bad}, nil)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	if strings.Join(names, " ") != "web api" {
		t.Errorf("good objects %v, want web api", names)
	}
	errs := manifest.Errors(err)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "b-bad.yaml:") || !strings.Contains(errs[1].Error(), "c-typed.yaml:6: document 0:") {
		t.Errorf("errors %q, want b-bad.yaml:N and c-typed.yaml:6", errs)
	}
}

func TestLoadMissingPathSaysItsPath(t *testing.T) {
	_, err := manifest.Load([]string{"deploy/x.yaml"}, nil)
	if err == nil || err.Error() != "deploy/x.yaml: no such file or directory" {
		t.Fatalf("err %v", err)
	}
}

const kustBase = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n"
const kustOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources:
  - ../base
patches:
  - path: replicas.yaml
`
const kustPatch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n"

// A kustomization is rendered, not read file by file: its base is not
// rendered alone and its patch is never a second Deployment.
func TestLoadKustomization(t *testing.T) {
	dir := testutil.WriteTree(t, map[string]string{
		"base/kustomization.yaml":    kustBase,
		"base/deployment.yaml":       deployment,
		"overlay/kustomization.yaml": kustOverlay,
		"overlay/replicas.yaml":      kustPatch,
	})
	for _, p := range []string{dir, filepath.Join(dir, "overlay"), filepath.Join(dir, "overlay", "kustomization.yaml")} {
		in, err := manifest.Read([]string{p}, nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(in.Objects) != 1 {
			t.Fatalf("%s: %d objects, want the overlay's one Deployment", p, len(in.Objects))
		}
		o := in.Objects[0]
		d, ok := o.Obj.(*appsv1.Deployment)
		if !ok || o.Namespace != "shop" || *d.Spec.Replicas != 5 {
			t.Fatalf("%s: %+v: want Deployment shop/web with the patch's 5 replicas", p, o)
		}
		// Located in the file it came from, not in the rendered stream.
		if o.Source.File != filepath.Join(dir, "base", "deployment.yaml") || o.Source.Line != 1 || o.Line("spec", "replicas") != 6 {
			t.Errorf("%s: source %v, replicas at line %d: want base/deployment.yaml:1, replicas at 6", p, o.Source, o.Line("spec", "replicas"))
		}
		if _, ok := d.Annotations["config.kubernetes.io/origin"]; ok {
			t.Errorf("%s: the origin annotation the build asked for is left on the object", p)
		}
		if n := notes(in); !strings.Contains(n, filepath.Join(dir, "overlay")+": kustomization rendered: 1 objects") {
			t.Errorf("%s: notes %q", p, n)
		}
	}

	// A base's file given on its own is read as given, with a note; a
	// patch given on its own is no manifest: nothing to judge.
	in, err := manifest.Read([]string{filepath.Join(dir, "base", "deployment.yaml")}, nil)
	if err != nil || len(in.Objects) != 1 ||
		!strings.Contains(notes(in), "the kustomization "+filepath.Join(dir, "base")+" uses it: give") {
		t.Errorf("base file given alone: %v, %d objects, notes %q", err, len(in.Objects), notes(in))
	}
	patch := filepath.Join(dir, "overlay", "replicas.yaml")
	in, err = manifest.Read([]string{patch}, nil)
	if len(in.Objects) != 0 || err == nil || err.Error() != patch+": nothing to judge: no Kubernetes object in the file (1 skipped, see the notes)" ||
		!strings.Contains(notes(in), patch+": skipped: a patch of the kustomization "+filepath.Join(dir, "overlay")+", not a manifest") {
		t.Errorf("patch given alone: %v, %d objects, notes %q", err, len(in.Objects), notes(in))
	}

	// A generated object has no file of its own: it stays at the kustomization.
	gen := testutil.WriteTree(t, map[string]string{"kustomization.yaml": "configMapGenerator:\n  - name: settings\n    literals: [a=b]\n"})
	objs, err := manifest.Load([]string{gen}, nil)
	if err != nil || len(objs) != 1 || objs[0].Source.File != filepath.Join(gen, "kustomization.yaml") || objs[0].Source.Line != 0 {
		t.Errorf("generated: %v %+v", err, objs)
	}

	// A kustomization that does not build: one line at its file.
	broken := testutil.WriteTree(t, map[string]string{"kustomization.yaml": "resources:\n  - missing.yaml\n"})
	_, err = manifest.Load([]string{broken}, nil)
	errs := manifest.Errors(err)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), filepath.Join(broken, "kustomization.yaml")+": kustomize: ") ||
		!strings.Contains(errs[0].Error(), "missing.yaml") || strings.Contains(errs[0].Error(), "\n") {
		t.Fatalf("errors %q", errs)
	}
}

// The project's own deploy/: every overlay rendered (the base only through
// them), the CI pipelines noted, nothing thrown away.
func TestLoadProjectDeployDir(t *testing.T) {
	in, err := manifest.Read([]string{"../deploy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var deps []string
	for _, o := range in.Objects {
		if o.Kind == "Deployment" {
			deps = append(deps, o.Namespace+"/"+o.Name+"@"+o.Source.File)
		}
	}
	want := "jiameng-api-dev/jiameng-api@../deploy/k8s/base/deployment.yaml jiameng-api-prod/jiameng-api@../deploy/k8s/base/deployment.yaml"
	if strings.Join(deps, " ") != want {
		t.Errorf("Deployments %v, want %s", deps, want)
	}
	n := notes(in)
	for _, want := range []string{
		"../deploy/cicd/github/deploy.yml:",
		"skipped: not a Kubernetes object (no apiVersion or kind)",
		"../deploy/soak/deployment.yaml: skipped: in the kustomization ../deploy/soak but not used by it",
		"../deploy/k8s/overlays/prod: kustomization rendered",
	} {
		if !strings.Contains(n, want) {
			t.Errorf("notes %q lack %q", n, want)
		}
	}
	if strings.Contains(n, "deploy/k8s/base:") {
		t.Errorf("the base was rendered on its own: %q", n)
	}
}

const dupService = `apiVersion: v1
kind: Service
metadata:
  name: s
spec:
  ports:
  - port: 80
  ports:
  - port: 443
  selector:
    app: s
`

// A key given twice is found in files and on stdin, at the second key's
// line; kustomize refuses such a resource, and the refusal is reported at
// the resource's file:line, one line per duplicate.
func TestDuplicateKeys(t *testing.T) {
	dir := testutil.WriteTree(t, map[string]string{"svc.yaml": dupService,
		"k/kustomization.yaml": "resources:\n- svc.yaml\n", "k/svc.yaml": dupService})
	for _, path := range []string{filepath.Join(dir, "svc.yaml"), "-"} {
		objs, err := manifest.Load([]string{path}, strings.NewReader(dupService))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v", path, err)
		}
		d := objs[0].Duplicates
		if len(d) != 1 || d[0].Key != "ports" || strings.Join(d[0].Path, ".") != "spec" || d[0].Line != 8 || d[0].FirstLine != 6 {
			t.Errorf("%s: duplicates %+v", path, d)
		}
	}
	_, err := manifest.Load([]string{filepath.Join(dir, "k")}, nil)
	errs := manifest.Errors(err)
	want := filepath.Join(dir, "k", "svc.yaml") + `:8: document 0: mapping key "ports" given twice (first at line 6): kustomize refuses to render it`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors %q, want %q", errs, want)
	}
}
