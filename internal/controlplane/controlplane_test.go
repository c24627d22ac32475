package controlplane_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rollsafe/rollsafe/internal/controlplane"
)

func TestMain(m *testing.M) {
	// Child mode for TestStopsWithParent: start a control plane, print its
	// pids, and wait to be killed.
	if os.Getenv("ROLLSAFE_CP_CHILD") == "1" {
		cp, err := controlplane.Start(context.Background(), controlplane.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		for name, pid := range cp.PIDs() {
			fmt.Printf("pid %s %d\n", name, pid)
		}
		fmt.Println("dir", cp.Dir)
		fmt.Println("ready")
		select {}
	}
	os.Exit(controlplane.RunTests(m, controlplane.TestOptions))
}

func TestVersionAndAdminKubeconfig(t *testing.T) {
	cp := controlplane.ForTest(t)
	// The kubeconfig file, as kubectl or a child process would read it.
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != controlplane.Version {
		t.Errorf("server version %q, want %q (the build script stamps it)", v.GitVersion, controlplane.Version)
	}
}

// The controller-manager is really running: a namespace gets its default
// ServiceAccount from the serviceaccount controller.
func TestControllerManagerRuns(t *testing.T) {
	cp := controlplane.ForTest(t)
	cs := kubernetes.NewForConfigOrDie(cp.Config())
	ctx := t.Context()
	ns := cp.TestNamespace(t, "cp-kcm-")
	w, err := cs.CoreV1().ServiceAccounts(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=default"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
		return
	}
	select {
	case <-w.ResultChan():
	case <-time.After(60 * time.Second): // a bound, not a speed claim
		t.Fatalf("no default ServiceAccount after 60s: controller-manager not working\n%s", cp.Logs())
	}
}

// A ServiceAccount and an impersonated user each get exactly their Role.
func TestRBACIdentities(t *testing.T) {
	cp := controlplane.ForTest(t)
	ctx := t.Context()
	podsOnly := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}

	sa, err := cp.ServiceAccount(ctx, "cp-rbac", "reader", podsOnly)
	if err != nil {
		t.Fatal(err)
	}
	user, err := cp.User(ctx, "cp-rbac", "alice", []string{"devs"}, podsOnly)
	if err != nil {
		t.Fatal(err)
	}
	none, err := cp.ServiceAccount(ctx, "cp-rbac", "nobody", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The ServiceAccount's kubeconfig works in a fresh client, as it would in
	// a child process.
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := controlplane.WriteKubeconfig(path, sa, "cp-rbac"); err != nil {
		t.Fatal(err)
	}
	saFromFile, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]*kubernetes.Clientset{
		"serviceaccount": kubernetes.NewForConfigOrDie(saFromFile),
		"user":           kubernetes.NewForConfigOrDie(user),
	} {
		if _, err := c.CoreV1().Pods("cp-rbac").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("%s: list pods (granted): %v", name, err)
		}
		_, err := c.AppsV1().Deployments("cp-rbac").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: list deployments (not granted): err = %v, want Forbidden", name, err)
		}
		_, err = c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: list pods in another namespace: err = %v, want Forbidden", name, err)
		}
	}
	_, err = kubernetes.NewForConfigOrDie(none).CoreV1().Pods("cp-rbac").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount without a Role: err = %v, want Forbidden", err)
	}
}

func TestMissingBinaries(t *testing.T) {
	dir := t.TempDir()
	_, err := controlplane.Start(context.Background(), controlplane.Options{BinDir: dir})
	var missing *controlplane.MissingBinaryError
	if !errors.As(err, &missing) || missing.Name != "etcd" {
		t.Fatalf("err = %v, want MissingBinaryError for etcd", err)
	}
	if !strings.Contains(err.Error(), "scripts/controlplane.sh") {
		t.Errorf("error does not say how to build: %v", err)
	}
}

func TestBinDirFromEnv(t *testing.T) {
	t.Setenv(controlplane.EnvBinDir, "/x/bin")
	if d := controlplane.BinDir(); d != "/x/bin" {
		t.Errorf("BinDir() = %q with %s set", d, controlplane.EnvBinDir)
	}
	t.Setenv(controlplane.EnvBinDir, "")
	t.Setenv("ROLLSAFE_CACHE", "/c")
	if d, want := controlplane.BinDir(), "/c/controlplane/"+controlplane.Version+"/bin"; d != want {
		t.Errorf("BinDir() = %q, want %q", d, want)
	}
}

// Stop leaves no process behind.
func TestStopKillsEverything(t *testing.T) {
	if _, err := os.Stat(filepath.Join(controlplane.BinDir(), "kube-apiserver")); err != nil {
		controlplane.ForTest(t) // skips or fails the same way
	}
	cp, err := controlplane.Start(t.Context(), controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pids, dir := cp.PIDs(), cp.Dir
	if len(pids) != 2 {
		t.Fatalf("pids = %v, want etcd and kube-apiserver", pids)
	}
	cp.Stop()
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still alive after Stop", name, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp work dir %s not removed: %v", dir, err)
	}
}

// A parent killed with SIGKILL (no chance to call Stop) takes its control
// plane with it: the kernel's parent-death signal does it.
func TestStopsWithParent(t *testing.T) {
	if _, err := os.Stat(filepath.Join(controlplane.BinDir(), "kube-apiserver")); err != nil {
		controlplane.ForTest(t)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "ROLLSAFE_CP_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "dir" {
			// The killed child cannot remove its work dir; we do.
			t.Cleanup(func() { os.RemoveAll(f[1]) })
		}
		if len(f) == 3 && f[0] == "pid" {
			pids[f[1]], _ = strconv.Atoi(f[2])
		}
		if sc.Text() == "ready" || strings.HasPrefix(sc.Text(), "error:") {
			if sc.Text() != "ready" {
				t.Fatal(sc.Text())
			}
			break
		}
	}
	if len(pids) != 2 {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("child reported pids %v", pids)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	for name, pid := range pids {
		// The kernel delivers the signal at once; the bound only absorbs a
		// busy machine's scheduling, it is not a speed claim.
		deadline := time.Now().Add(30 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) outlived its parent", name, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name, is the state.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// kubectl (built by the same script) reads the admin kubeconfig and agrees
// on the version: the ldflags stamp is what lets it parse the server's.
func TestKubectlTalksToIt(t *testing.T) {
	cp := controlplane.ForTest(t)
	kubectl := filepath.Join(controlplane.BinDir(), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("kubectl not built: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), kubectl, "--kubeconfig", cp.KubeconfigPath, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	for _, want := range []string{"Client Version: " + controlplane.Version, "Server Version: " + controlplane.Version} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl version output lacks %q:\n%s", want, out)
		}
	}
}
