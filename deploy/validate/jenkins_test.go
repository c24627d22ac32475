package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var jenkinsStages = []string{"Test", "Build image", "Push to ECR", "Set image tag", "rollsafe check", "Apply to EKS", "Rollout gate"}

func TestJenkinsfileStructure(t *testing.T) {
	root, err := ParseDeclarative(string(readKit(t, "deploy", "cicd", "jenkins", "Jenkinsfile")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range CheckDeclarative(root, jenkinsStages) {
		t.Error(p)
	}
}

func TestJenkinsStructureCatchesBrokenCopy(t *testing.T) {
	data := string(readKit(t, "deploy", "cicd", "jenkins", "Jenkinsfile"))
	for _, c := range []struct{ old, new, want string }{
		{"stage('Test') {\n            steps {", "stage('Test') {\n            step {", "has no steps"},
		{"    post {\n        always {", "    post {\n        allways {", "no always"},
		{"stage('Apply to EKS')", "stage('Apply')", "missing or out of order"},
		{"    agent { label 'docker' }\n", "", "no agent"},
	} {
		broken := strings.Replace(data, c.old, c.new, 1)
		if broken == data {
			t.Fatalf("Jenkinsfile no longer contains %q: update the mutation", c.old)
		}
		root, err := ParseDeclarative(broken)
		if err != nil {
			t.Fatal(err)
		}
		probs := CheckDeclarative(root, jenkinsStages)
		if !strings.Contains(strings.Join(probs, "\n"), c.want) {
			t.Errorf("%q: problems %q, want one saying %q", c.new, probs, c.want)
		}
	}
	if _, err := ParseDeclarative(strings.Replace(data, "sh 'go test ./...'\n            }\n", "sh 'go test ./...'\n", 1)); err == nil {
		t.Error("a missing closing brace parsed")
	}
}

// groovyLint runs npm-groovy-lint 16.2.0 on one Jenkinsfile (in its own
// directory, so the linter sees the file name Jenkinsfile and applies its
// Jenkinsfile rules) and returns its errors and warnings.
func groovyLint(t *testing.T, content []byte) []string {
	t.Helper()
	npx, err := exec.LookPath("npx")
	if err == nil {
		_, err = exec.LookPath("java")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm-groovy-lint needs npx and java: %v", err)
		}
		t.Skipf("npm-groovy-lint needs npx (nodejs) and java: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "Jenkinsfile")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(npx, "--yes", "npm-groovy-lint@16.2.0", "--noserver", "--failon", "warning", "--output", "json", file)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out struct {
		Files map[string]struct {
			Errors []struct {
				Line     any    `json:"line"`
				Rule     string `json:"rule"`
				Severity string `json:"severity"`
				Msg      string `json:"msg"`
			} `json:"errors"`
		} `json:"files"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("npm-groovy-lint: %v (exit %v)\nstdout: %s\nstderr: %s", err, runErr, stdout.String(), stderr.String())
	}
	var found []string
	for _, f := range out.Files {
		for _, e := range f.Errors {
			if e.Severity == "info" {
				t.Logf("npm-groovy-lint info: line %v %s: %s", e.Line, e.Rule, e.Msg)
				continue
			}
			found = append(found, strings.TrimSpace(e.Severity+" line "+toString(e.Line)+" "+e.Rule+": "+e.Msg))
		}
	}
	if (runErr == nil) != (len(found) == 0) {
		t.Fatalf("npm-groovy-lint exit %v disagrees with its findings %q", runErr, found)
	}
	return found
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func TestJenkinsfilePassesGroovyLint(t *testing.T) {
	for _, f := range groovyLint(t, readKit(t, "deploy", "cicd", "jenkins", "Jenkinsfile")) {
		t.Error(f)
	}
}

func TestGroovyLintCatchesBrokenCopy(t *testing.T) {
	data := string(readKit(t, "deploy", "cicd", "jenkins", "Jenkinsfile"))
	broken := strings.Replace(data, "sh 'go test ./...'\n            }\n", "sh 'go test ./...'\n", 1)
	if broken == data {
		t.Fatal("Jenkinsfile changed: update the mutation")
	}
	found := groovyLint(t, []byte(broken))
	if len(found) == 0 {
		t.Fatal("npm-groovy-lint accepted a Jenkinsfile with a missing brace")
	}
	t.Logf("caught: %s", found[0])
}
