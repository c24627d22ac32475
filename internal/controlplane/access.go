package controlplane

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes cfg (server, CA, bearer token, impersonation) as a
// kubeconfig file with one context, so a child process or kubectl can use
// the same identity. namespace, if set, becomes the context's default.
func WriteKubeconfig(path string, cfg *rest.Config, namespace string) error {
	auth := &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateUID:        cfg.Impersonate.UID,
		ImpersonateGroups:     cfg.Impersonate.Groups,
		ImpersonateUserExtra:  cfg.Impersonate.Extra,
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"rollsafe": {
			Server:                   cfg.Host,
			CertificateAuthorityData: cfg.CAData,
			InsecureSkipTLSVerify:    cfg.Insecure,
		}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"rollsafe": auth},
		Contexts:       map[string]*clientcmdapi.Context{"rollsafe": {Cluster: "rollsafe", AuthInfo: "rollsafe", Namespace: namespace}},
		CurrentContext: "rollsafe",
	}
	return clientcmd.WriteToFile(kc, path)
}

// ServiceAccount creates namespace/name (and the namespace) if missing,
// binds it to a Role named name holding rules when rules is non-nil, and
// returns a configuration that authenticates as that ServiceAccount with a
// fresh token from the TokenRequest API — the identity an in-cluster pod
// would have. Pass nil rules to get an account with no permissions at all.
func (cp *ControlPlane) ServiceAccount(ctx context.Context, namespace, name string, rules []rbacv1.PolicyRule) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(cp.cfg)
	if err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, cs, namespace); err != nil {
		return nil, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create ServiceAccount %s/%s: %w", namespace, name, err)
	}
	if rules != nil {
		subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}
		if err := bindRole(ctx, cs, namespace, name, subject, rules); err != nil {
			return nil, err
		}
	}
	expiry := int64(24 * 3600)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	cfg := rest.AnonymousClientConfig(cp.cfg)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// User binds user (in groups) to a Role named user holding rules in
// namespace (skipped when rules is nil) and returns a configuration that
// acts as that user. It authenticates as the admin and impersonates the user,
// so the apiserver authorizes every request exactly as it would the user's own.
func (cp *ControlPlane) User(ctx context.Context, namespace, user string, groups []string, rules []rbacv1.PolicyRule) (*rest.Config, error) {
	if rules != nil {
		cs, err := kubernetes.NewForConfig(cp.cfg)
		if err != nil {
			return nil, err
		}
		if err := ensureNamespace(ctx, cs, namespace); err != nil {
			return nil, err
		}
		subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}
		if err := bindRole(ctx, cs, namespace, user, subject, rules); err != nil {
			return nil, err
		}
	}
	cfg := cp.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg, nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// bindRole creates or replaces Role name with rules and binds subject to it.
func bindRole(ctx context.Context, cs kubernetes.Interface, namespace, name string, subject rbacv1.Subject, rules []rbacv1.PolicyRule) error {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Rules: rules}
	roles := cs.RbacV1().Roles(namespace)
	if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur, gerr := roles.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		cur.Rules = rules
		_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update Role %s/%s: %w", namespace, name, err)
		}
	} else if err != nil {
		return fmt.Errorf("create Role %s/%s: %w", namespace, name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create RoleBinding %s/%s: %w", namespace, name, err)
	}
	return nil
}
