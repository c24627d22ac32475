package validate

import (
	"context"
	"strings"
	"testing"
)

func TestDockerfileHasNoLintWarnings(t *testing.T) {
	res, err := LintDockerfile(context.Background(), "Dockerfile", readKit(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" {
		t.Fatalf("buildkit cannot convert the Dockerfile: %s", res.Error)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w)
	}
	t.Logf("base images resolved by the stub: %v", res.BaseImages)
}

// The linter must flag typical mistakes, or a clean result means nothing.
func TestDockerfileLintCatchesBrokenCopy(t *testing.T) {
	data := string(readKit(t, "Dockerfile"))
	for _, c := range []struct{ old, new, rule string }{
		// lower-case "as" next to upper-case FROM
		{"golang:${GO_VERSION}-bookworm AS build", "golang:${GO_VERSION}-bookworm as build", "FromAsCasing"},
		// shell-form ENTRYPOINT: SIGTERM goes to /bin/sh, not the app
		{`ENTRYPOINT ["/usr/local/bin/demo-api"]`, `ENTRYPOINT /usr/local/bin/demo-api`, "JSONArgsRecommended"},
		// a misspelt build argument: the image would answer an empty version
		{`ENV VERSION=${VERSION}`, `ENV VERSION=${VERSON}`, "UndefinedVar"},
	} {
		broken := strings.Replace(data, c.old, c.new, 1)
		if broken == data {
			t.Fatalf("Dockerfile no longer contains %q: update the mutation", c.old)
		}
		res, err := LintDockerfile(context.Background(), "Dockerfile", []byte(broken))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, w := range res.Warnings {
			found = found || strings.HasPrefix(w, c.rule+":")
		}
		if !found {
			t.Errorf("%q: want a %s warning, got %v (error %q)", c.new, c.rule, res.Warnings, res.Error)
			continue
		}
		t.Logf("%q caught: %v", c.new, res.Warnings)
	}
}
