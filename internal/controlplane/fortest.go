package controlplane

import (
	"context"
	"errors"
	"os"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TB is the part of testing.TB that ForTest uses; taking an interface keeps
// package testing out of binaries that import controlplane.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// TestOptions is what ForTest starts: apiserver, controller-manager and scheduler.
var TestOptions = Options{ControllerManager: true, Scheduler: true}

// shared is the control plane RunTests hands to every ForTest in a test binary.
var shared struct {
	sync.Mutex
	enabled bool
	opts    Options
	cp      *ControlPlane
	err     error
}

// RunTests is for TestMain: it runs the tests with one control plane shared
// by every ForTest call, started at the first call (so a run that skips those
// tests starts nothing) and stopped when the tests are done. It returns the
// exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, controlplane.TestOptions)) }
func RunTests(m interface{ Run() int }, opts Options) int {
	shared.Lock()
	shared.enabled, shared.opts = true, opts
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.cp != nil {
		shared.cp.Stop()
		shared.cp = nil
	}
	return code
}

// ForTest returns a running control plane for t. Under RunTests it is the
// shared one (tests should then keep to their own namespaces); otherwise a
// fresh one with TestOptions, stopped when t ends. When the binaries are
// not built, t is skipped with how to build them, unless CI=true, where a
// missing control plane fails the test instead.
func ForTest(t TB) *ControlPlane {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.enabled {
		cp, err := Start(context.Background(), TestOptions)
		if err != nil {
			skipOrFail(t, err)
			return nil
		}
		t.Cleanup(cp.Stop)
		return cp
	}
	if shared.cp == nil && shared.err == nil {
		shared.cp, shared.err = Start(context.Background(), shared.opts)
	}
	if shared.err != nil {
		skipOrFail(t, shared.err)
		return nil
	}
	return shared.cp
}

// TestNamespace creates a namespace named prefix plus a generated suffix
// (GenerateName), so that tests sharing the control plane never share a
// namespace, and deletes it when t ends. It returns the namespace's name.
func (cp *ControlPlane) TestNamespace(t TB, prefix string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatalf("client for the control plane: %v", err)
	}
	namespaces := cs.CoreV1().Namespaces()
	ns, err := namespaces.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s…: %v", prefix, err)
	}
	t.Cleanup(func() { _ = namespaces.Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	return ns.Name
}

func skipOrFail(t TB, err error) {
	t.Helper()
	var missing *MissingBinaryError
	if errors.As(err, &missing) && os.Getenv("CI") != "true" {
		t.Skipf("no Kubernetes control plane: %v", err)
	}
	t.Fatalf("starting the Kubernetes control plane: %v", err)
}
