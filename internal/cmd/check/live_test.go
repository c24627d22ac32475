package check_test

// The deploy kit and `check --live` against a real kube-apiserver + etcd
// (package controlplane; binaries from scripts/controlplane.sh).

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/manifest"
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{})) // started on first use only
}

func kubectl(t *testing.T, cp *controlplane.ControlPlane, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(controlplane.BinDir(), "kubectl"), append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestDeployKitServerDryRunAndCheckLive(t *testing.T) {
	cp := controlplane.ForTest(t)
	cs, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			rendered := kubectl(t, cp, nil, "kustomize", "../../../deploy/k8s/overlays/"+env)
			objs, err := manifest.Parse(env, rendered)
			if err != nil {
				t.Fatal(err)
			}
			ns := ""
			for _, o := range objs {
				if o.Kind == "Namespace" {
					ns = o.Name
					// Namespaced objects can be dry-run only into a namespace that exists.
					if _, err := cs.CoreV1().Namespaces().Create(ctx, o.Obj.(*corev1.Namespace), metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if ns == "" {
				t.Fatal("the overlay renders no Namespace")
			}
			out := kubectl(t, cp, rendered, "apply", "--dry-run=server", "-f", "-")
			if n := strings.Count(string(out), "(server dry run)"); n != len(objs) {
				t.Fatalf("server dry run accepted %d of %d objects:\n%s", n, len(objs), out)
			}
			kubectl(t, cp, rendered, "apply", "-f", "-")

			code, stdout, stderr := run(t, "", "--live", "--kubeconfig", cp.KubeconfigPath, "-n", ns)
			if code != cmdutil.ExitOK {
				t.Fatalf("check --live on the applied kit: exit %d\n%s%s", code, stdout, stderr)
			}
			// Take the namespace label away: --live must read it and object.
			patch := `{"metadata":{"labels":{"elbv2.k8s.aws/pod-readiness-gate-inject":null}}}`
			if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			code, stdout, _ = run(t, "", "--live", "--kubeconfig", cp.KubeconfigPath, "-n", ns)
			if code != cmdutil.ExitFailed || !strings.Contains(stdout, "readiness-gate-missing") {
				t.Fatalf("without the namespace label: exit %d, want 1 with readiness-gate-missing:\n%s", code, stdout)
			}
		})
	}
}
