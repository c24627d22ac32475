package manifest

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// kindSpec is one kind rollsafe reads, from files and from a live cluster.
type kindSpec struct {
	kind string
	// apiVersion is the version LoadLive lists; files may use others
	// (accepts).
	apiVersion string
	// resource names the kind in LoadLive's errors.
	resource string
	// accepts says whether a file's apiVersion (and its group) holds the
	// kind in a shape new decodes. The version is ignored where older
	// versions share the shape rollsafe reads.
	accepts func(group, apiVersion string) bool
	new     func() runtime.Object
	// list reads the kind from a cluster; nil for a file-only shape.
	list func(ctx context.Context, c clients, namespace string) ([]object, error)
	// optional: a Forbidden or NotFound answer (not ours to read, or a CRD
	// not installed) only makes the check less informed.
	optional bool
	// lenient: an object of the kind that does not decode is kept untyped
	// (Obj nil), never an error, as a kind rollsafe does not read.
	lenient bool
}

// kinds is the one list of the kinds rollsafe reads, in the order LoadLive
// lists them.
var kinds = []kindSpec{
	{kind: "Deployment", apiVersion: "apps/v1", resource: "deployments",
		accepts: inGroup("apps", "extensions"), new: func() runtime.Object { return &appsv1.Deployment{} },
		list: func(ctx context.Context, c clients, ns string) ([]object, error) {
			l, err := c.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items })
		}},
	{kind: "StatefulSet", apiVersion: "apps/v1", resource: "statefulsets",
		accepts: inGroup("apps"), new: func() runtime.Object { return &appsv1.StatefulSet{} },
		list: func(ctx context.Context, c clients, ns string) ([]object, error) {
			l, err := c.cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *appsv1.StatefulSetList) []appsv1.StatefulSet { return l.Items })
		}},
	{kind: "Service", apiVersion: "v1", resource: "services",
		accepts: inGroup(""), new: func() runtime.Object { return &corev1.Service{} },
		list: func(ctx context.Context, c clients, ns string) ([]object, error) {
			l, err := c.cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *corev1.ServiceList) []corev1.Service { return l.Items })
		}},
	{kind: "Ingress", apiVersion: "networking.k8s.io/v1", resource: "ingresses",
		accepts: func(_, v string) bool { return v == "networking.k8s.io/v1" },
		new:     func() runtime.Object { return &networkingv1.Ingress{} },
		list: func(ctx context.Context, c clients, ns string) ([]object, error) {
			l, err := c.cs.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *networkingv1.IngressList) []networkingv1.Ingress { return l.Items })
		}},
	// Pre-v1 Ingresses, converted to v1 once decoded (ingressV1).
	{kind: "Ingress", accepts: inGroup("networking.k8s.io", "extensions"),
		new: func() runtime.Object { return &networkingv1beta1.Ingress{} }},
	{kind: "PodDisruptionBudget", apiVersion: "policy/v1", resource: "poddisruptionbudgets",
		accepts: inGroup("policy"), new: func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
		list: func(ctx context.Context, c clients, ns string) ([]object, error) {
			l, err := c.cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *policyv1.PodDisruptionBudgetList) []policyv1.PodDisruptionBudget { return l.Items })
		}},
	// IngressClasses and Namespaces are cluster-scoped; a namespaced user
	// may not list them.
	{kind: "IngressClass", apiVersion: "networking.k8s.io/v1", resource: "ingressclasses", optional: true,
		accepts: inGroup("networking.k8s.io"), new: func() runtime.Object { return &networkingv1.IngressClass{} },
		list: func(ctx context.Context, c clients, _ string) ([]object, error) {
			l, err := c.cs.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
			return listed(l, err, func(l *networkingv1.IngressClassList) []networkingv1.IngressClass { return l.Items })
		}},
	{kind: "Namespace", apiVersion: "v1", resource: "namespaces", optional: true,
		accepts: inGroup(""), new: func() runtime.Object { return &corev1.Namespace{} }, list: listNamespaces},
	// ConfigMaps are read from files only, for ingress-nginx's settings
	// (workload): a live read would list every ConfigMap of the namespace.
	// A chart's ConfigMap must never fail a check, so they are lenient.
	{kind: "ConfigMap", accepts: inGroup(""), lenient: true, new: func() runtime.Object { return &corev1.ConfigMap{} }},
	{kind: "TargetGroupBinding", apiVersion: "elbv2.k8s.aws/v1beta1", resource: "targetgroupbindings", optional: true,
		accepts: inGroup("elbv2.k8s.aws"), new: func() runtime.Object { return &TargetGroupBinding{} },
		list: listTargetGroupBindings},
}

// object is what a typed list item is: a runtime.Object with metadata.
type object interface {
	runtime.Object
	metav1.Object
}

// clients are what LoadLive reads a cluster through; dyn may be nil.
type clients struct {
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

func inGroup(groups ...string) func(group, apiVersion string) bool {
	return func(group, _ string) bool {
		for _, g := range groups {
			if g == group {
				return true
			}
		}
		return false
	}
}

// listed turns a typed list's items into objects.
func listed[L any, T any, P interface {
	*T
	object
}](l L, err error, items func(L) []T) ([]object, error) {
	if err != nil {
		return nil, err
	}
	xs := items(l)
	out := make([]object, len(xs))
	for i := range xs {
		out[i] = P(&xs[i])
	}
	return out, nil
}

// listNamespaces lists every Namespace, or gets the one namespace when
// the read is namespaced (absent is no error).
func listNamespaces(ctx context.Context, c clients, ns string) ([]object, error) {
	if ns == "" {
		l, err := c.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return listed(l, err, func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items })
	}
	n, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []object{n}, nil
}

// listTargetGroupBindings reads the controller's CRD through the dynamic
// client (nil: not asked to).
func listTargetGroupBindings(ctx context.Context, c clients, ns string) ([]object, error) {
	if c.dyn == nil {
		return nil, nil
	}
	l, err := c.dyn.Resource(TargetGroupBindingResource).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]object, 0, len(l.Items))
	for i := range l.Items {
		var t TargetGroupBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(l.Items[i].Object, &t); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", l.Items[i].GetNamespace(), l.Items[i].GetName(), err)
		}
		out = append(out, &t)
	}
	return out, nil
}
