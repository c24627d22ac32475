package check_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/workload"
)

// The official OASIS SARIF 2.1.0 JSON schema is not a Go module; the npm
// package @datadog/datadog-ci (Apache-2.0) ships an unmodified copy, so the
// test fetches it with npm into the user cache and pins its SHA-256.
const (
	schemaPackage = "@datadog/datadog-ci@2.48.0"
	schemaMember  = "package/dist/commands/sarif/json-schema/sarif-schema-2.1.0.json"
	schemaSHA256  = "10666d46649b52e262001e70d43e6c52f7c0279ca3dbdfe9a7dc2e4071556454"
)

func sarifSchema(t *testing.T) []byte {
	t.Helper()
	skip := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, a...)
		}
		t.Skipf(format, a...)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	path := filepath.Join(cache, "rollsafe", "sarif-schema-2.1.0-"+schemaSHA256[:12]+".json")
	if data, err := os.ReadFile(path); err == nil && sha(data) == schemaSHA256 {
		return data
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skip("npm not found: cannot fetch the SARIF 2.1.0 schema (Debian package npm)")
	}
	dir := t.TempDir()
	cmd := exec.Command(npm, "pack", schemaPackage, "--pack-destination", dir, "--silent")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		skip("npm pack %s: %v: %s", schemaPackage, err, out)
	}
	tgzs, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(tgzs) != 1 {
		t.Fatalf("npm pack left %v", tgzs)
	}
	data := untar(t, tgzs[0], schemaMember)
	if got := sha(data); got != schemaSHA256 {
		t.Fatalf("schema from %s has sha256 %s, want %s", schemaPackage, got, schemaSHA256)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		_ = os.WriteFile(path, data, 0o644)
	}
	return data
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func untar(t *testing.T, tgz, member string) []byte {
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", member, tgz, err)
		}
		if h.Name == member {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

// TestSARIFValidatesAgainstSchema renders every fixture's findings as SARIF
// and validates the log against the official SARIF 2.1.0 schema.
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	raw := sarifSchema(t)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob("testdata/*/*")
	res := checkFiles(t, workload.DefaultOptions(), paths...)
	if len(res.Findings) < 20 {
		t.Fatalf("only %d findings to render", len(res.Findings))
	}
	var buf bytes.Buffer
	if err := check.RenderSARIF(&buf, res, "test"); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("SARIF output is not valid SARIF 2.1.0: %v", err)
	}
	// The validator must be able to fail: a result without a message is invalid.
	var log map[string]any
	_ = json.Unmarshal(buf.Bytes(), &log)
	delete(log["runs"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any), "message")
	broken, _ := json.Marshal(log)
	inst, _ = jsonschema.UnmarshalJSON(bytes.NewReader(broken))
	if schema.Validate(inst) == nil {
		t.Fatal("a result without message validated")
	}
	// Every result points at a file and line.
	var parsed struct {
		Runs []struct {
			Results []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	_ = json.Unmarshal(buf.Bytes(), &parsed)
	for _, r := range parsed.Runs[0].Results {
		pl := r.Locations[0].PhysicalLocation
		if pl.ArtifactLocation.URI == "" || pl.Region.StartLine < 1 {
			t.Fatalf("result without file:line: %+v", r)
		}
	}
}
