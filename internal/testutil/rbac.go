package testutil

import (
	"os"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// RoleRules reads the rules of the Role in the multi-document manifest at
// path, so a test runs with exactly what users apply.
func RoleRules(t testing.TB, path string) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		var role rbacv1.Role
		if err := yaml.UnmarshalStrict([]byte(doc), &role); err == nil && role.Kind == "Role" {
			return role.Rules
		}
	}
	t.Fatalf("no Role in %s", path)
	return nil
}
