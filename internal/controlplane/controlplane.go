// Package controlplane starts a real Kubernetes control plane on loopback:
// etcd, kube-apiserver and, optionally, kube-controller-manager and
// kube-scheduler, built from the Go module proxy by scripts/controlplane.sh.
// rollsafe's tests and `rollsafe lab --kube` run against it, so rolling
// updates, EndpointSlices, RBAC and the API itself are Kubernetes', not a
// fake's.
//
// Everything binds 127.0.0.1 on free ports and lives in one work directory;
// the children run in their own process groups with a parent-death signal, so
// Stop (or the death of this process) leaves nothing behind.
package controlplane

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Version is the Kubernetes release scripts/controlplane.sh builds.
const Version = "v1.37.2"

// EnvBinDir names the environment variable that overrides where the binaries are.
const EnvBinDir = "ROLLSAFE_CONTROLPLANE_BIN"

// BinDir is where the binaries are looked up: $ROLLSAFE_CONTROLPLANE_BIN, or
// the cache scripts/controlplane.sh fills,
// ${ROLLSAFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollsafe}/controlplane/<Version>/bin.
func BinDir() string {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d
	}
	cache := os.Getenv("ROLLSAFE_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "rollsafe")
	}
	return filepath.Join(cache, "controlplane", Version, "bin")
}

// Options says what to start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler. Empty means BinDir().
	BinDir string
	// Dir is the work directory (keys, kubeconfig, etcd data, logs). Empty
	// means a fresh temporary directory that Stop removes; a given Dir is kept.
	Dir string
	// ControllerManager starts kube-controller-manager with every controller,
	// so Deployments make ReplicaSets and ReplicaSets make Pods.
	ControllerManager bool
	// Scheduler starts kube-scheduler, which binds pods to registered Nodes.
	Scheduler bool
	// Extra flags appended to each component's command line.
	APIServerArgs, ControllerManagerArgs, SchedulerArgs []string
	// StartTimeout bounds the wait for every component to be ready (default 90s:
	// two busy shared cores can take a while).
	StartTimeout time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// URL is the apiserver's https address.
	URL string
	// Dir is the work directory; per-component logs are Dir/<component>.log.
	Dir string
	// KubeconfigPath is a kubeconfig file for the admin (system:masters).
	KubeconfigPath string

	cfg     *rest.Config
	pki     *pki
	procs   []*process // in start order; stopped in reverse
	tempDir bool
}

// Config returns a copy of the admin client configuration.
func (cp *ControlPlane) Config() *rest.Config { return rest.CopyConfig(cp.cfg) }

// Start starts the control plane and returns once every component is ready.
// On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	var err error
	// A free port can be taken between our probe and the component's bind
	// (other helpers run tests on this machine too): try again with new ports.
	for attempt := 0; attempt < 3; attempt++ {
		var cp *ControlPlane
		cp, err = start(ctx, opts)
		if err == nil {
			return cp, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

func start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.BinDir == "" {
		opts.BinDir = BinDir()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	bins, err := resolveBinaries(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	cp = &ControlPlane{Dir: opts.Dir}
	if cp.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "rollsafe-controlplane-"); err != nil {
			return nil, err
		}
		cp.tempDir = true
	} else if err := os.MkdirAll(cp.Dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cp.Stop()
			cp = nil
		}
	}()
	if cp.pki, err = newPKI(cp.Dir); err != nil {
		return cp, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return cp, err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]

	// etcd first: the apiserver exits if it cannot reach storage in time.
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err = cp.run("etcd", bins["etcd"], []string{
		"--name=default",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		// Throwaway data: fsync only costs test time.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}); err != nil {
		return cp, err
	}
	if err = cp.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return cp, err
	}

	cp.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	cp.cfg = &rest.Config{
		Host:            cp.URL,
		BearerToken:     cp.pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caCert},
		QPS:             100, Burst: 200, // tests create objects in bursts
	}
	cp.KubeconfigPath = filepath.Join(cp.Dir, "admin.kubeconfig")
	if err = WriteKubeconfig(cp.KubeconfigPath, cp.cfg, ""); err != nil {
		return cp, err
	}
	if err = cp.run("kube-apiserver", bins["kube-apiserver"], append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(cp.Dir, "apiserver-certs"),
		"--tls-cert-file=" + cp.pki.servingCrt,
		"--tls-private-key-file=" + cp.pki.servingKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + cp.pki.saPub,
		"--service-account-signing-key-file=" + cp.pki.saKey,
		"--token-auth-file=" + cp.pki.tokensFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/12",
		// 1.37 refuses a 127.0.0.1 advertise address with the default reconciler.
		"--endpoint-reconciler-type=none",
		// No default ServiceAccount until the controller-manager makes one;
		// pods must not wait for it.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
	}, opts.APIServerArgs...)); err != nil {
		return cp, err
	}
	if err = cp.waitHTTP(ctx, "kube-apiserver", cp.URL+"/readyz", cp.cfg); err != nil {
		return cp, err
	}

	// Both controllers authenticate with the admin kubeconfig and serve only
	// their health endpoints, on their own free ports.
	common := func(name string, port int) []string {
		return []string{
			"--kubeconfig=" + cp.KubeconfigPath,
			"--authentication-kubeconfig=" + cp.KubeconfigPath,
			"--authorization-kubeconfig=" + cp.KubeconfigPath,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(cp.Dir, name+"-certs"),
			"--leader-elect=false",
		}
	}
	if opts.ControllerManager {
		args := append(common("kube-controller-manager", kcmPort),
			"--service-account-private-key-file="+cp.pki.saKey,
			"--root-ca-file="+cp.pki.servingCrt,
			"--controllers=*",
		)
		if err = cp.run("kube-controller-manager", bins["kube-controller-manager"], append(args, opts.ControllerManagerArgs...)); err != nil {
			return cp, err
		}
		if err = cp.waitHTTP(ctx, "kube-controller-manager", fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), nil); err != nil {
			return cp, err
		}
	}
	if opts.Scheduler {
		if err = cp.run("kube-scheduler", bins["kube-scheduler"], append(common("kube-scheduler", schedPort), opts.SchedulerArgs...)); err != nil {
			return cp, err
		}
		if err = cp.waitHTTP(ctx, "kube-scheduler", fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), nil); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

func resolveBinaries(opts Options) (map[string]string, error) {
	names := []string{"etcd", "kube-apiserver"}
	if opts.ControllerManager {
		names = append(names, "kube-controller-manager")
	}
	if opts.Scheduler {
		names = append(names, "kube-scheduler")
	}
	bins := map[string]string{}
	for _, n := range names {
		p, err := binary(opts.BinDir, n)
		if err != nil {
			return nil, err
		}
		bins[n] = p
	}
	return bins, nil
}

func (cp *ControlPlane) run(name, bin string, args []string) error {
	p, err := startProcess(name, bin, args, filepath.Join(cp.Dir, name+".log"))
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return nil
}

// Stop stops every component, newest first, and removes a temporary work
// directory. It is safe to call more than once.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop(10 * time.Second)
	}
	cp.procs = nil
	if cp.tempDir && cp.Dir != "" {
		os.RemoveAll(cp.Dir)
		cp.Dir = ""
	}
}

// Logs returns the last output of every component, for a failing test to print.
func (cp *ControlPlane) Logs() string {
	var b strings.Builder
	for _, p := range cp.procs {
		b.WriteString(p.logTail())
		b.WriteString("\n")
	}
	return b.String()
}

// freePorts asks the kernel for n distinct free loopback ports, holding all
// listeners until every port is known so none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// PIDs returns the process id of every running component by name.
func (cp *ControlPlane) PIDs() map[string]int {
	m := map[string]int{}
	for _, p := range cp.procs {
		m[p.name] = p.cmd.Process.Pid
	}
	return m
}
