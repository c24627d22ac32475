package manifest

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// LoadLive lists, from a live cluster, the same kinds the file loader reads
// (kinds): Deployments, StatefulSets, Services, Ingresses,
// PodDisruptionBudgets and TargetGroupBindings in namespace ("" for all
// namespaces), plus every IngressClass and the Namespaces involved. A
// cluster without the TargetGroupBinding CRD (dyn may be nil), or a user
// who may not read the cluster-scoped kinds, is not an error.
func LoadLive(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, namespace string) ([]*Object, error) {
	var objs []*Object
	for _, k := range kinds {
		if k.list == nil {
			continue
		}
		items, err := k.list(ctx, clients{cs, dyn}, namespace)
		switch {
		case err != nil && k.optional && (apierrors.IsForbidden(err) || apierrors.IsNotFound(err)):
			continue // not ours to read, or not served here
		case err != nil:
			return nil, fmt.Errorf("list %s: %w", k.resource, err)
		}
		for _, it := range items {
			objs = append(objs, &Object{APIVersion: k.apiVersion, Kind: k.kind, Namespace: it.GetNamespace(),
				Name: it.GetName(), Obj: it})
		}
	}
	return objs, nil
}
