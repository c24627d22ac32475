package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/rollsafe/rollsafe/manifest"
)

const multi = `# leading comment
apiVersion: v1
kind: Secret
metadata:
  name: settings
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: x
        lifecycle:
          preStop:
            exec:
              command: [sleep, "5"]
`

func TestParseMultiDocument(t *testing.T) {
	objs, err := manifest.Parse("m.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("got %d objects", len(objs))
	}
	if objs[0].Kind != "Secret" || objs[0].Obj != nil || objs[0].Source.Line != 2 || objs[0].Source.Doc != 0 {
		t.Errorf("secret: %+v", objs[0])
	}
	d := objs[1]
	dep, ok := d.Obj.(*appsv1.Deployment)
	if !ok || *dep.Spec.Replicas != 2 || d.Namespace != "shop" {
		t.Fatalf("deployment: %+v", d)
	}
	if d.Source.Doc != 2 || d.Source.Line != 8 {
		t.Errorf("source %+v, want doc 2 line 8", d.Source)
	}
	if l := d.Line("spec", "template", "spec", "containers", "0", "lifecycle", "preStop"); l != 25 {
		t.Errorf("preStop line %d, want 25", l)
	}
	// A missing field points at its deepest present ancestor.
	if l := d.Line("spec", "template", "spec", "terminationGracePeriodSeconds"); l != 20 {
		t.Errorf("missing field line %d, want 20 (template spec)", l)
	}
}

func TestParseJSONListAndOldIngress(t *testing.T) {
	in := "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"List\",\n\t\"items\": [\n\t\t{\"apiVersion\": \"extensions/v1beta1\", \"kind\": \"Ingress\",\n\t\t \"metadata\": {\"name\": \"old\"},\n\t\t \"spec\": {\"backend\": {\"serviceName\": \"web\", \"servicePort\": 80}}}\n\t]\n}\n"
	objs, err := manifest.Parse("l.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Source.Line != 5 {
		t.Fatalf("objs %+v", objs)
	}
	ing := objs[0].Obj.(*networkingv1.Ingress)
	if b := ing.Spec.DefaultBackend; b == nil || b.Service.Name != "web" || b.Service.Port.Number != 80 {
		t.Errorf("converted backend %+v", ing.Spec.DefaultBackend)
	}
}

func TestParseErrorsLocateFileLineDocument(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\nkind: x\n  bad: [\n", "f.yaml:7: document 1:"},
		{"type", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: three\n", "f.yaml:6: document 0: Deployment \"d\": field spec.replicas: cannot use a string as int32"},
		{"nested type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        ports:\n        - containerPort: http\n", "f.yaml:10: document 0:"},
		{"no kind", "---\nfoo: bar\n", "f.yaml:2: document 0: not a Kubernetes object"},
		{"scalar", "just text\n", "f.yaml:1: document 0: not a Kubernetes object (a scalar"},
		{"list items", "apiVersion: v1\nkind: List\nitems: 3\n", "f.yaml:3: document 0: List.items must be a list"},
		{"alias bomb", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "document 0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := manifest.Parse("f.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; objects %v", objs)
			}
			errs := manifest.Errors(err)
			var me *manifest.Error
			if len(errs) != 1 || !errors.As(errs[0], &me) {
				t.Fatalf("errors %v", errs)
			}
			if !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", errs[0], tc.want)
			}
			if strings.Contains(errs[0].Error(), "\n") {
				t.Errorf("error is not one line: %q", errs[0])
			}
		})
	}
}

func TestLoadDirectoryStdinAndMissing(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, ".git"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "b.json"), []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "README.md"), []byte("not yaml: [\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, ".git", "c.yaml"), []byte("broken: [\n"), 0o644))
	objs, err := manifest.Load([]string{dir, "-"}, strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name+"@"+filepath.Base(o.Source.File))
	}
	if strings.Join(names, " ") != "a@a.yaml b@b.json c@-" {
		t.Errorf("loaded %v", names)
	}
	_, err = manifest.Load([]string{filepath.Join(dir, "nope.yaml")}, nil)
	if err == nil || err.Error() != filepath.Join(dir, "nope.yaml")+": no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}
