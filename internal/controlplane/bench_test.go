package controlplane_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rollsafe/rollsafe/internal/controlplane"
)

// BenchmarkStartStop measures a cold etcd + kube-apiserver start to /readyz
// and a full stop: the fixed cost a test binary pays once.
func BenchmarkStartStop(b *testing.B) {
	if _, err := os.Stat(filepath.Join(controlplane.BinDir(), "kube-apiserver")); err != nil {
		b.Skipf("control plane not built: %v", err)
	}
	for b.Loop() {
		cp, err := controlplane.Start(b.Context(), controlplane.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cp.Stop()
	}
}
