package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/manifest"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// every failure must be a located one-line *manifest.Error naming the file.
// CI runs it bounded: go test -fuzz=FuzzLoad -fuzztime=20s ./manifest
func FuzzLoad(f *testing.F) {
	f.Add([]byte(multi))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"}}]}"))
	f.Add([]byte("a: &a [1]\nb: *a\n<<: {kind: x}\n"))
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: .inf}\n"))
	seeds, _ := filepath.Glob("../check/testdata/*/*")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := manifest.Parse("in.yaml", data)
		for _, o := range objs {
			if o.Kind == "" || o.APIVersion == "" || o.Source.File != "in.yaml" {
				t.Fatalf("object without identity: %+v", o)
			}
			_ = o.Line("spec", "template", "spec", "containers", "0", "lifecycle")
		}
		for _, e := range manifest.Errors(err) {
			var me *manifest.Error
			if !errors.As(e, &me) {
				t.Fatalf("unlocated error %T: %v", e, e)
			}
			if me.File != "in.yaml" || me.Msg == "" || strings.Contains(e.Error(), "\n") {
				t.Fatalf("bad error %q", e)
			}
		}
	})
}
