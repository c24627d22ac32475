package albcontroller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch runs a Controller against a Kubernetes API server: an informer on
// the pods in namespace that match selector (the Service's) feeds Observe,
// and gate conditions are set by patching the pod's status — the same
// call the AWS Load Balancer Controller makes. It returns once the
// informer has synced.
//
// The real controller resolves targets from EndpointSlices; a pod's
// deletionTimestamp is what turns its endpoint terminating, and its
// ContainersReady condition what makes a gated endpoint registrable, so
// watching pods gives the same registrations one hop earlier.
func Watch(ctx context.Context, cs kubernetes.Interface, namespace string, selector labels.Selector, opts Options) (*Controller, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector.String() }))
	pods := factory.Core().V1().Pods()
	lister := pods.Lister().Pods(namespace)
	opts.Get = func(name string) (*corev1.Pod, bool) {
		p, err := lister.Get(name)
		if err != nil {
			return nil, false
		}
		return p, true
	}
	opts.SetGate = func(p *corev1.Pod, t corev1.PodConditionType) error {
		return patchCondition(ctx, cs, p, t)
	}
	c := New(ctx, opts)
	pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { observe(c, obj) },
		UpdateFunc: func(_, obj any) { observe(c, obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				c.Forget(p.Name)
			}
		},
	})
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("albcontroller: %v informer did not sync", typ)
		}
	}
	return c, nil
}

func observe(c *Controller, obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		c.Observe(p)
	}
}

// patchCondition sets condition t True on the pod's status with a strategic
// merge patch: conditions merge by type, so the kubelet's own conditions
// stay as they are.
func patchCondition(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, t corev1.PodConditionType) error {
	now := metav1.NewTime(time.Now()).UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","lastProbeTime":null,"lastTransitionTime":%q}]}}`, t, now)
	_, err := cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	return err
}
