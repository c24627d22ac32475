package cmdutil_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

func TestKubeFlags(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir()) // no ~/.kube/config
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	fl := pflag.NewFlagSet("x", pflag.ContinueOnError)
	k := cmdutil.AddKubeFlags(fl, "the namespace")
	if err := fl.Parse([]string{"-n", "shop", "--context", "prod"}); err != nil {
		t.Fatal(err)
	}
	if got := k.Given(); !slices.Equal(got, []string{"--context prod"}) || k.Namespace() != "shop" {
		t.Fatalf("Given %v, Namespace %q", got, k.Namespace())
	}
	if fl.Lookup("insecure-skip-tls-verify") != nil || fl.Lookup("namespace").Usage != "the namespace" {
		t.Fatal("want only the cluster, identity and namespace flags, -n with the command's help")
	}
	// No kubeconfig anywhere: one usage line, not kubectl's localhost:8080.
	if _, _, err := k.Config(); cmdutil.Code(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "kubeconfig: no cluster in") {
		t.Fatalf("no kubeconfig: %v (exit %d)", err, cmdutil.Code(err))
	}
	fl = pflag.NewFlagSet("x", pflag.ContinueOnError)
	k = cmdutil.AddKubeFlags(fl, "")
	missing := filepath.Join(t.TempDir(), "kubeconfig")
	if err := fl.Parse([]string{"--kubeconfig", missing}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Config(); cmdutil.Code(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing --kubeconfig: %v (exit %d)", err, cmdutil.Code(err))
	}
}
