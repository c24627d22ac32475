package fleet

import rbacv1 "k8s.io/api/rbac/v1"

// Rules is everything Run does in the workers' namespace, and nothing
// more: create, watch and delete the Job, watch its pods, follow their
// logs. deploy/probe/rbac.yaml grants exactly this (a test holds the two
// equal).
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}
