// Command harness runs what bench/soak/run.sh soaks against: a real control
// plane (etcd, kube-apiserver, controller-manager, scheduler on loopback)
// and soak's pod and load-balancer stand-ins (soak/soaktest) around a
// Deployment "web". It prints one line, "KUBECONFIG NAMESPACE URL", and
// runs until SIGINT/SIGTERM, then stops everything it started.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/soak/soaktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cp, err := controlplane.Start(ctx, controlplane.TestOptions)
	if err != nil {
		return err
	}
	defer cp.Stop()
	admin, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		return err
	}
	e, err := soaktest.Start(ctx, admin, "bench", 2)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Println(cp.KubeconfigPath, e.Namespace, e.Backend.URL)
	<-ctx.Done()
	return nil
}
