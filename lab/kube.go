package lab

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/albcontroller"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
	"github.com/rollsafe/rollsafe/lab/nodeagent"
	"github.com/rollsafe/rollsafe/observe/kube"
	"github.com/rollsafe/rollsafe/workload"
)

// KubeOptions put the lab on a real control plane: the Deployment's
// rolling update, EndpointSlices and the API are Kubernetes itself; pods
// run under the node agent with the same kubelet code as the embedded lab.
type KubeOptions struct {
	Config *rest.Config
}

// onKube runs a scenario's pods on a real control plane.
type onKube struct {
	cs     kubernetes.Interface
	ns     string
	agents []*nodeagent.Agent
	ctrl   *albcontroller.Controller // ip topologies
	feed   *sliceFeed                // instance and ingress topologies
}

func startKube(ctx context.Context, r *run) (platform, error) {
	cs, err := kubernetes.NewForConfig(r.o.Kube.Config)
	if err != nil {
		return nil, err
	}
	k := &onKube{cs: cs}
	if err := k.setUp(ctx, r); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

// setUp creates the namespace, Service and Deployment a user would apply,
// and starts the node agents and what routes to the pods: the controller
// stand-in on ip topologies, the EndpointSlice feed of the kube-proxies or
// nginx on the others.
func (k *onKube) setUp(ctx context.Context, r *run) error {
	if err := k.createNamespace(ctx, r); err != nil {
		return err
	}
	if r.evidenceOn {
		// What `rollsafe probe --kube` records: the real watcher on the
		// scenario's namespace, from before the first pod exists.
		w, err := kube.Start(r.observeCtx, k.cs, kube.Options{Namespace: k.ns, Selector: "app=" + deploymentName}, r.emit)
		if err != nil {
			return fmt.Errorf("kube watch: %w", err)
		}
		// emit's error has already cancelled the run, which reports it.
		r.observing.Go(func() { _ = w.Wait() })
	}
	if err := k.startAgents(ctx, r); err != nil {
		return err
	}
	if err := k.startRouting(ctx, r); err != nil {
		return err
	}
	return k.apply(ctx, r)
}

func (k *onKube) createNamespace(ctx context.Context, r *run) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rollsafe-lab-" + r.s.Name + "-"}}
	if r.s.ReadinessGate {
		ns.Labels = map[string]string{defaults.GateInjectLabel: "enabled"}
	}
	got, err := k.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	k.ns = got.Name
	return nil
}

// sliced says whether the path reads the pods from EndpointSlices: through
// a node's kube-proxy or ingress-nginx. Those pods need addresses the API
// accepts in a slice (podNetwork); the ip paths' controller stand-in reads
// pods, whose loopback addresses the API stores as they are.
func sliced(r *run) bool { return r.nodes != nil || r.hop != nil }

// startAgents starts a node agent per lab node on instance topologies, so
// that the scheduler places the pods and each endpoint's nodeName is a
// node a kube-proxy runs on (Local needs it); one agent elsewhere.
func (k *onKube) startAgents(ctx context.Context, r *run) error {
	n, pn := 1, newPodNetwork()
	if r.nodes != nil {
		n = len(r.nodes.nodes)
	}
	for i := 1; i <= n; i++ {
		o := nodeagent.Options{
			Config: r.o.Kube.Config, NodeName: k.nodeName(i), Port: AppPort,
			Command: r.o.App, Scale: r.scale, Sink: r.onPodRecord, PodOutput: r.o.PodOutput,
		}
		if sliced(r) {
			o.FirstIP, o.PodAddr = pn.first(i), pn.inAPI
		}
		a, err := nodeagent.Start(ctx, o)
		if err != nil {
			return fmt.Errorf("node agent: %w", err)
		}
		k.agents = append(k.agents, a)
	}
	if sliced(r) {
		k.feed = &sliceFeed{pn: pn, node: k.labNode}
	}
	return nil
}

// nodeName is node agent i's Node (1-based): nodes are cluster-wide, so
// the namespace keeps two labs on one control plane apart.
func (k *onKube) nodeName(i int) string { return fmt.Sprintf("rollsafe-lab-%s-%d", k.ns, i) }

// labNode is the lab node (kube-proxy) a Node stands for: agent i's Node
// is lab node i.
func (k *onKube) labNode(name string) string {
	for i := range k.agents {
		if k.nodeName(i+1) == name {
			return nodeName(i + 1)
		}
	}
	return name
}

// startRouting starts what reacts to the pods: the controller stand-in
// from the pods on ip topologies; the EndpointSlice watch on the others,
// handed to every kube-proxy or to nginx's syncers.
func (k *onKube) startRouting(ctx context.Context, r *run) error {
	if k.feed == nil {
		sel := labels.SelectorFromSet(labels.Set{"app": deploymentName})
		var err error
		k.ctrl, err = albcontroller.Watch(ctx, k.cs, k.ns, sel, r.controllerOptions())
		return err
	}
	k.feed.apply = func(eps []kubeproxy.Endpoint) {
		if r.nodes != nil {
			r.nodes.apply(eps)
		}
		if r.hop != nil {
			r.hop.apply(eps)
		}
	}
	return watchSlices(ctx, k.cs, k.ns, deploymentName, k.feed)
}

// apply creates the Service, the ALB Ingress on alb-ip (what check --live
// judges), and the Deployment, and waits for its first revision.
func (k *onKube) apply(ctx context.Context, r *run) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: deploymentName, Namespace: k.ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": deploymentName},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(AppPort)}},
		},
	}
	if _, err := k.cs.CoreV1().Services(k.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	if r.topo.Name == DefaultTopology {
		if _, err := k.cs.NetworkingV1().Ingresses(k.ns).Create(ctx, ingress(r.s), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ingress: %w", err)
		}
	}
	d := deployment(r.s, r.scale)
	d.Namespace = k.ns
	// The deployment controller counts minReadySeconds in real time, where
	// the embedded one scales it: write it scaled, in whole seconds up.
	if m := d.Spec.MinReadySeconds; m > 0 {
		d.Spec.MinReadySeconds = int32(math.Ceil(r.scale.Of(time.Duration(m) * time.Second).Seconds()))
	}
	d.Annotations = map[string]string{workload.AnnotationAppIdleTimeout: r.s.App.IdleTimeout.String()}
	if _, err := k.cs.AppsV1().Deployments(k.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	if err := k.waitComplete(ctx); err != nil {
		return fmt.Errorf("first revision never became available: %w", err)
	}
	return nil
}

func (k *onKube) namespace() string { return k.ns }

// ingress is the ALB Ingress the scenario's settings describe, as the AWS
// Load Balancer Controller would read them, so `check --live` judges the
// same numbers the ALB stand-in runs with.
func ingress(s Scenario) *networkingv1.Ingress {
	const p = defaults.ALBAnnotationPrefix
	hc := s.HealthCheck
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	class := defaults.ALBClassName
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: deploymentName, Annotations: map[string]string{
			p + "target-type":                  "ip",
			p + "target-group-attributes":      defaults.AttrDeregistrationDelay + "=" + secs(s.DeregistrationDelay),
			p + "load-balancer-attributes":     defaults.AttrIdleTimeout + "=" + secs(s.LBIdleTimeout),
			p + "healthcheck-path":             hc.Path,
			p + "healthcheck-interval-seconds": secs(hc.Interval),
			p + "healthcheck-timeout-seconds":  secs(hc.Timeout),
			p + "healthy-threshold-count":      strconv.Itoa(hc.HealthyThreshold),
			p + "unhealthy-threshold-count":    strconv.Itoa(hc.UnhealthyThreshold),
			p + "success-codes":                hc.Matcher,
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: deploymentName, Port: networkingv1.ServiceBackendPort{Number: 80},
			}},
		},
	}
}

func (k *onKube) rollout(ctx context.Context, t corev1.PodTemplateSpec) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := k.cs.AppsV1().Deployments(k.ns).Get(ctx, deploymentName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template = t
		_, err = k.cs.AppsV1().Deployments(k.ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	return k.waitComplete(ctx)
}

// waitComplete polls the Deployment until `kubectl rollout status` would
// call it complete.
func (k *onKube) waitComplete(ctx context.Context) error {
	for {
		d, err := k.cs.AppsV1().Deployments(k.ns).Get(ctx, deploymentName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		switch state, msg := kube.DeploymentState(d); state {
		case kube.RolloutComplete:
			return nil
		case kube.RolloutFailed:
			return fmt.Errorf("rollout failed: %s", msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (k *onKube) terminating() bool {
	pods, err := k.cs.CoreV1().Pods(k.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			return true
		}
	}
	return false
}

func (k *onKube) close() {
	if k.feed != nil {
		k.feed.close()
	}
	for _, a := range k.agents {
		a.Stop()
	}
	if k.ctrl != nil {
		k.ctrl.Wait()
	}
	if k.ns != "" {
		// Best effort: the control plane may already be gone, and then
		// there is nothing left to clean.
		_ = k.cs.CoreV1().Namespaces().Delete(context.Background(), k.ns, metav1.DeleteOptions{})
	}
}
