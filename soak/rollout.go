package soak

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/rollsafe/rollsafe/observe/kube"
)

// revisionAnnotation numbers a Deployment's revisions and its ReplicaSets'.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// ErrRolloutFailed marks a rollout the Deployment itself gave up on
// (progress deadline exceeded).
var ErrRolloutFailed = errors.New("rollout failed")

// deployments is soak's view of one Deployment through the API.
type deployments struct {
	client    kubernetes.Interface
	namespace string
	name      string
}

var (
	permGet   = Permission{Verb: "get", Group: "apps", Resource: "deployments"}
	permPatch = Permission{Verb: "patch", Group: "apps", Resource: "deployments"}
	permWatch = Permission{Verb: "watch", Group: "apps", Resource: "deployments"}
	permRS    = Permission{Verb: "list", Group: "apps", Resource: "replicasets"}
	permPods  = Permission{Verb: "list", Group: "", Resource: "pods"}
)

func (d *deployments) get(ctx context.Context) (*appsv1.Deployment, error) {
	dep, err := d.client.AppsV1().Deployments(d.namespace).Get(ctx, d.name, metav1.GetOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, &InputError{fmt.Sprintf("deployment %q not found in namespace %q", d.name, d.namespace)}
		}
		return nil, refused(err, d.namespace, permGet)
	}
	return dep, nil
}

// trigger reads the Deployment and patches its pod template; it returns the
// patched object (its generation is the one the rollout must reach).
func (d *deployments) trigger(ctx context.Context, t Trigger, p func(*appsv1.Deployment) (patch, error)) (*appsv1.Deployment, patch, error) {
	dep, err := d.get(ctx)
	if err != nil {
		return nil, patch{}, err
	}
	pt, err := p(dep)
	if err != nil {
		return nil, patch{}, err
	}
	out, err := d.client.AppsV1().Deployments(d.namespace).Patch(ctx, d.name, pt.typ, pt.data, metav1.PatchOptions{FieldManager: "rollsafe-soak"})
	if err != nil {
		return nil, patch{}, refused(fmt.Errorf("patch --trigger %s: %w", t, err), d.namespace, permPatch)
	}
	return out, pt, nil
}

// waitComplete watches the Deployment until it is rolled out as
// `kubectl rollout status` decides (kube.DeploymentState), the progress
// deadline fails it, or ctx ends. Like kubectl it lists then watches, and
// re-watches when the apiserver closes the stream. onState sees every
// change, for the progress line.
func (d *deployments) waitComplete(ctx context.Context, generation int64, onState func(state, msg string)) (*appsv1.Deployment, error) {
	sel := fields.OneTermEqualSelector("metadata.name", d.name).String()
	api := d.client.AppsV1().Deployments(d.namespace)
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return api.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return api.Watch(ctx, o)
		},
	}
	var last *appsv1.Deployment
	var failed error
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		dep, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			return false, &InputError{fmt.Sprintf("deployment %s/%s was deleted during the rollout", d.namespace, d.name)}
		}
		last = dep
		state, msg := kube.DeploymentState(dep)
		if onState != nil {
			onState(state, msg)
		}
		switch {
		case dep.Generation < generation: // a stale event from before our patch
			return false, nil
		case state == kube.RolloutFailed:
			failed = fmt.Errorf("%w: %s", ErrRolloutFailed, msg)
			return false, failed
		}
		return state == kube.RolloutComplete, nil
	})
	if failed != nil {
		return last, failed
	}
	if err != nil {
		if ctx.Err() != nil {
			state, msg := "not observed", ""
			if last != nil {
				state, msg = kube.DeploymentState(last)
			}
			return last, fmt.Errorf("rollout not complete: %s (%s)", state, msg)
		}
		return last, refused(err, d.namespace, permWatch)
	}
	return last, nil
}

// newReplicas names the pods of dep's current ReplicaSet: the one owned by
// dep whose revision is dep's. Those pods are the new version; a response
// from one of them (X-Served-By) proves the new version answers.
func (d *deployments) newReplicas(ctx context.Context, dep *appsv1.Deployment) (map[string]bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return nil, &InputError{fmt.Sprintf("deployment %s/%s selector: %v", d.namespace, d.name, err)}
	}
	rsl, err := d.client.AppsV1().ReplicaSets(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, refused(err, d.namespace, permRS)
	}
	rev := dep.Annotations[revisionAnnotation]
	var hash string
	for _, rs := range rsl.Items {
		if metav1.IsControlledBy(&rs, dep) && rev != "" && rs.Annotations[revisionAnnotation] == rev {
			hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	if hash == "" {
		return nil, fmt.Errorf("no ReplicaSet of deployment %s/%s has revision %q", d.namespace, d.name, rev)
	}
	req, err := labels.NewRequirement(appsv1.DefaultDeploymentUniqueLabelKey, "=", []string{hash})
	if err != nil {
		return nil, err
	}
	pods, err := d.client.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.Add(*req).String()})
	if err != nil {
		return nil, refused(err, d.namespace, permPods)
	}
	names := make(map[string]bool, len(pods.Items))
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names[p.Name] = true
		}
	}
	return names, nil
}
