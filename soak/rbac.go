package soak

import (
	"context"
	"fmt"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Rules is everything soak does in the Deployment's namespace, and nothing
// more: read and patch the Deployment, read its ReplicaSets and pods to know
// which replicas are the new version. deploy/soak/rbac.yaml grants exactly
// this (a test holds the two equal).
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
}

// Permission is one verb on one resource.
type Permission struct{ Verb, Group, Resource string }

func (p Permission) String() string {
	if p.Group == "" {
		return p.Verb + " " + p.Resource
	}
	return p.Verb + " " + p.Resource + " (" + p.Group + ")"
}

// PermissionError says which of Rules the identity lacks.
type PermissionError struct {
	Namespace string
	Missing   []Permission
	Err       error // the API's own refusal, when a call was refused
}

func (e *PermissionError) Error() string {
	names := make([]string, len(e.Missing))
	for i, p := range e.Missing {
		names[i] = p.String()
	}
	word := "permission"
	if len(names) > 1 {
		word = "permissions"
	}
	return fmt.Sprintf("forbidden: missing %s in namespace %s: %s (grant deploy/soak/rbac.yaml's Role)",
		word, e.Namespace, strings.Join(names, ", "))
}

func (e *PermissionError) Unwrap() error { return e.Err }

// Preflight asks the apiserver (SelfSubjectAccessReview, which every
// authenticated identity may create) whether the caller holds every one of
// Rules in namespace, so a missing grant is reported whole, before the first
// rollout, rather than as the first refusal halfway through one. A cluster
// that refuses the review itself is not an answer: soak then learns from the
// real calls.
func Preflight(ctx context.Context, client kubernetes.Interface, namespace string) error {
	var missing []Permission
	for _, r := range Rules {
		for _, verb := range r.Verbs {
			p := Permission{Verb: verb, Group: r.APIGroups[0], Resource: r.Resources[0]}
			review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
				Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
					Namespace: namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource}},
			}, metav1.CreateOptions{})
			switch {
			case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
				return nil
			case err != nil:
				return fmt.Errorf("kubernetes API: %w", err)
			case !review.Status.Allowed:
				missing = append(missing, p)
			}
		}
	}
	if len(missing) > 0 {
		return &PermissionError{Namespace: namespace, Missing: missing}
	}
	return nil
}

// refused turns the API's Forbidden on one call into a PermissionError
// naming that call's verb and resource; other errors pass through.
func refused(err error, namespace string, p Permission) error {
	if apierrors.IsForbidden(err) {
		return &PermissionError{Namespace: namespace, Missing: []Permission{p}, Err: err}
	}
	return err
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
