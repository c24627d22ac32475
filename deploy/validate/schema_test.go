package validate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pipelineSchemas pairs each pipeline file with the schema that judges it.
// shared: the schema is public data kept in ../shared/schemas; otherwise it
// is rollsafe's own, in deploy/validate/schemas.
var pipelineSchemas = []pipelineSchema{
	{"github", "github/deploy.yml", "github-workflow.json", true, "    runs-on: ubuntu-24.04\n    environment:", "    runs_on: ubuntu-24.04\n    environment:"},
	{"circleci", "circleci/config.yml", "circleci.json", true, "  test:\n    executor: go\n    steps:", "  test:\n    executor: go\n    step:"},
	{"gitlab", "gitlab/gitlab-ci.yml", "gitlab-ci.json", true, "  script:\n    - go test ./...", "  scripts:\n    - go test ./..."},
	{"codebuild", "codebuild/buildspec.yml", "buildspec.json", false, "  pre_build:", "  pre-build:"},
}

type pipelineSchema struct {
	name     string
	file     string // under deploy/cicd
	schema   string
	shared   bool
	breakOld string // a deliberate mistake the schema must catch
	breakNew string
}

// load reads p's schema (schemaPath skips t, or fails it under CI, when the
// shared schemas are missing).
func (p pipelineSchema) load(t *testing.T) *Schema {
	t.Helper()
	s, err := LoadSchema(schemaPath(t, p.schema, p.shared))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func schemaPath(t *testing.T, name string, shared bool) string {
	t.Helper()
	if !shared {
		return filepath.Join("schemas", name)
	}
	p, err := SharedSchema(name)
	if errors.Is(err, ErrNoSharedSchemas) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPipelinesMatchTheirSchemas(t *testing.T) {
	for _, p := range pipelineSchemas {
		t.Run(p.name, func(t *testing.T) {
			s := p.load(t)
			if err := s.ValidateFile(Path("deploy", "cicd", p.file)); err != nil {
				t.Error(err)
			}
		})
	}
}

// Each schema must reject a copy of its pipeline with one typical mistake,
// or the test above proves nothing.
func TestSchemasCatchBrokenPipelines(t *testing.T) {
	for _, p := range pipelineSchemas {
		t.Run(p.name, func(t *testing.T) {
			s := p.load(t)
			data, err := os.ReadFile(Path("deploy", "cicd", p.file))
			if err != nil {
				t.Fatal(err)
			}
			broken := strings.Replace(string(data), p.breakOld, p.breakNew, 1)
			if broken == string(data) {
				t.Fatalf("%s no longer contains %q: update the mutation", p.file, p.breakOld)
			}
			doc, err := ParseYAML(p.file, []byte(broken))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(doc)
			if err == nil {
				t.Fatalf("schema %s accepted %s with %q", p.schema, p.file, p.breakNew)
			}
			t.Logf("caught: %v", err)
		})
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
