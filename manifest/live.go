package manifest

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TargetGroupBindingResource is where the controller's CRD is served.
var TargetGroupBindingResource = schema.GroupVersionResource{
	Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}

// LoadLiveConfig lists the kinds rollsafe judges from the cluster cfg points
// at; see LoadLive.
func LoadLiveConfig(ctx context.Context, cfg *rest.Config, namespace string) ([]*Object, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return LoadLive(ctx, cs, dyn, namespace)
}

// LoadLive lists, from a live cluster, the same kinds the file loader reads:
// Deployments, StatefulSets, Services, Ingresses, PodDisruptionBudgets and
// TargetGroupBindings in namespace ("" for all namespaces), plus every
// IngressClass and the Namespaces involved. A cluster without the
// TargetGroupBinding CRD (dyn may be nil) is not an error.
func LoadLive(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, namespace string) ([]*Object, error) {
	var objs []*Object
	add := func(kind, apiVersion string, obj runtime.Object, m metav1.Object) {
		objs = append(objs, &Object{APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(),
			Name: m.GetName(), Obj: obj})
	}
	opts := metav1.ListOptions{}
	deps, err := cs.AppsV1().Deployments(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for i := range deps.Items {
		add("Deployment", "apps/v1", &deps.Items[i], &deps.Items[i])
	}
	sts, err := cs.AppsV1().StatefulSets(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list statefulsets: %w", err)
	}
	for i := range sts.Items {
		add("StatefulSet", "apps/v1", &sts.Items[i], &sts.Items[i])
	}
	svcs, err := cs.CoreV1().Services(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		add("Service", "v1", &svcs.Items[i], &svcs.Items[i])
	}
	ings, err := cs.NetworkingV1().Ingresses(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list ingresses: %w", err)
	}
	for i := range ings.Items {
		add("Ingress", "networking.k8s.io/v1", &ings.Items[i], &ings.Items[i])
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list poddisruptionbudgets: %w", err)
	}
	for i := range pdbs.Items {
		add("PodDisruptionBudget", "policy/v1", &pdbs.Items[i], &pdbs.Items[i])
	}
	// IngressClasses and Namespaces are cluster-scoped; a namespaced user
	// may not list them, which only makes the check less informed.
	if ics, err := cs.NetworkingV1().IngressClasses().List(ctx, opts); err == nil {
		for i := range ics.Items {
			add("IngressClass", "networking.k8s.io/v1", &ics.Items[i], &ics.Items[i])
		}
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list ingressclasses: %w", err)
	}
	if namespace == "" {
		nss, err := cs.CoreV1().Namespaces().List(ctx, opts)
		if err != nil && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		if err == nil {
			for i := range nss.Items {
				add("Namespace", "v1", &nss.Items[i], &nss.Items[i])
			}
		}
	} else if ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err == nil {
		add("Namespace", "v1", ns, ns)
	} else if !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get namespace %s: %w", namespace, err)
	}
	if dyn != nil {
		tgbs, err := dyn.Resource(TargetGroupBindingResource).Namespace(namespace).List(ctx, opts)
		switch {
		case err == nil:
			for i := range tgbs.Items {
				var t TargetGroupBinding
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tgbs.Items[i].Object, &t); err != nil {
					return nil, fmt.Errorf("targetgroupbinding %s/%s: %w", tgbs.Items[i].GetNamespace(), tgbs.Items[i].GetName(), err)
				}
				add("TargetGroupBinding", "elbv2.k8s.aws/v1beta1", &t, &t)
			}
		case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
			// No controller CRD installed, or not ours to read.
		default:
			return nil, fmt.Errorf("list targetgroupbindings: %w", err)
		}
	}
	return objs, nil
}
