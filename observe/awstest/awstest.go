// Package awstest points the AWS SDK's standard configuration chain, for
// one test, at static test credentials and nothing else: no profile, no
// shared files, no instance metadata. The observers' tests build their
// clients through that chain, as rollsafe does on EKS.
package awstest

import (
	"path/filepath"
	"testing"
)

// Env sets the chain's environment for t, in region; t.Setenv restores it
// when t ends.
func Env(t testing.TB, region string) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
}
