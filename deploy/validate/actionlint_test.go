package validate

import (
	"os"
	"strings"
	"testing"
)

func readKit(t *testing.T, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(Path(elem...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGitHubWorkflowPassesActionlint(t *testing.T) {
	errs, err := LintWorkflow("deploy.yml", readKit(t, "deploy", "cicd", "github", "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("actionlint: %s", e)
	}
}

// actionlint catches what a schema cannot: a job that needs a job that does
// not exist, and an expression naming an unknown context.
func TestActionlintCatchesBrokenWorkflow(t *testing.T) {
	data := string(readKit(t, "deploy", "cicd", "github", "deploy.yml"))
	for _, c := range []struct{ old, new, want string }{
		{"needs: test", "needs: tset", "tset"},
		{"${{ vars.AWS_ROLE_ARN }}", "${{ var.AWS_ROLE_ARN }}", "var"},
	} {
		broken := strings.Replace(data, c.old, c.new, 1)
		if broken == data {
			t.Fatalf("deploy.yml no longer contains %q: update the mutation", c.old)
		}
		errs, err := LintWorkflow("broken.yml", []byte(broken))
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) == 0 {
			t.Errorf("actionlint accepted %q", c.new)
			continue
		}
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Message, c.want)
		}
		if !found {
			t.Errorf("%q: errors %v do not mention %q", c.new, errs, c.want)
		}
		t.Logf("%q caught: %s", c.new, errs[0])
	}
}
