package validate

import (
	"fmt"
	"regexp"
	"strings"
)

// DeploySteps are the commands every pipeline of the kit runs, in this
// order: test, push, set the image, gate on rollsafe check, apply, gate on
// rollsafe probe during the rollout. (docker build is checked separately:
// some systems log in to ECR before building, some after.)
var DeploySteps = []string{
	"go test ./...",
	"aws ecr get-login-password",
	"docker push",
	"kustomize edit set image \"demo-api=$IMAGE\"",
	"rollsafe check rendered.yaml",
	"aws eks update-kubeconfig",
	"kubectl apply -f rendered.yaml",
	"deploy/cicd/rollout-gate.sh",
}

var ecrLogin = regexp.MustCompile(`aws ecr get-login-password[^\n]*\|\s*docker login --username AWS --password-stdin`)

// CheckSteps reports the deploy steps a pipeline's text lacks or runs out
// of order.
func CheckSteps(text string) []string {
	var probs []string
	at := 0
	for _, s := range DeploySteps {
		i := strings.Index(text[at:], s)
		if i < 0 {
			if strings.Contains(text, s) {
				probs = append(probs, fmt.Sprintf("%q runs out of order (want %q)", s, DeploySteps))
			} else {
				probs = append(probs, fmt.Sprintf("%q missing", s))
			}
			continue
		}
		at += i + len(s)
	}
	build, push := strings.Index(text, "docker build"), strings.Index(text, "docker push")
	if build < 0 || build > push {
		probs = append(probs, "docker build missing or after docker push")
	}
	if !ecrLogin.MatchString(text) {
		probs = append(probs, "ECR login is not `aws ecr get-login-password | docker login --username AWS --password-stdin`")
	}
	return probs
}
