package cmdutil

import (
	"os"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeFlags are kubectl's own connection flags, from k8s.io/cli-runtime as
// kubectl plugins take them, and the one way rollsafe's commands build a
// Kubernetes client. Only the ones that choose a cluster, an identity and a
// namespace (--kubeconfig, --context, --cluster, --user, --as, --as-group,
// -n): kubectl's --insecure-skip-tls-verify and --request-timeout beside
// probe's and soak's own --insecure and --timeout would only confuse.
type KubeFlags struct {
	cf *genericclioptions.ConfigFlags
	fs *pflag.FlagSet
}

// AddKubeFlags adds the connection flags to fl. namespaceUsage is -n's
// help: what the namespace is for in this command.
func AddKubeFlags(fl *pflag.FlagSet, namespaceUsage string) *KubeFlags {
	all := genericclioptions.NewConfigFlags(false)
	cf := &genericclioptions.ConfigFlags{KubeConfig: all.KubeConfig, Context: all.Context,
		ClusterName: all.ClusterName, AuthInfoName: all.AuthInfoName,
		Impersonate: all.Impersonate, ImpersonateGroup: all.ImpersonateGroup, Namespace: all.Namespace}
	fs := pflag.NewFlagSet("kubernetes", pflag.ContinueOnError)
	cf.AddFlags(fs)
	fs.Lookup("namespace").Usage = namespaceUsage
	fl.AddFlagSet(fs)
	return &KubeFlags{cf: cf, fs: fs}
}

// Given lists the flags other than -n given on the command line, each as
// "--name value", for the message that refuses them where no cluster is
// read.
func (k *KubeFlags) Given() []string {
	var given []string
	k.fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed && f.Name != "namespace" {
			given = append(given, "--"+f.Name+" "+f.Value.String())
		}
	})
	return given
}

// Namespace is -n's value ("" when not given).
func (k *KubeFlags) Namespace() string { return *k.cf.Namespace }

// Config loads the client config the way kubectl does ($KUBECONFIG, then
// ~/.kube/config, then the pod's ServiceAccount; the flags win) and
// resolves the namespace: -n, else the context's, else "default". A
// kubeconfig that cannot be loaded, or no cluster in any (and no pod to
// fall back on), is a usage error: kubectl would try localhost:8080.
func (k *KubeFlags) Config() (*rest.Config, string, error) {
	loader := k.cf.ToRawKubeConfigLoader()
	if raw, err := loader.RawConfig(); err == nil && len(raw.Clusters) == 0 && !inCluster() {
		return nil, "", UsageErrorf("kubeconfig: no cluster in --kubeconfig, $KUBECONFIG or ~/.kube/config, and not in a pod")
	}
	cfg, err := k.cf.ToRESTConfig()
	if err != nil {
		return nil, "", UsageErrorf("kubeconfig: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, "", UsageErrorf("kubeconfig namespace: %w", err)
	}
	return cfg, ns, nil
}

// Client is Config's clientset.
func (k *KubeFlags) Client() (kubernetes.Interface, string, error) {
	cfg, ns, err := k.Config()
	if err != nil {
		return nil, "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", UsageErrorf("kubeconfig: %w", err)
	}
	return cs, ns, nil
}

// inCluster is client-go's own test for a pod's ServiceAccount config.
func inCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}
