package validate

import (
	"strings"
	"testing"
)

var pipelineFiles = []string{"github/deploy.yml", "circleci/config.yml", "codebuild/buildspec.yml", "gitlab/gitlab-ci.yml", "jenkins/Jenkinsfile"}

func TestEveryPipelineRunsTheDeploySteps(t *testing.T) {
	for _, f := range pipelineFiles {
		for _, p := range CheckSteps(string(readKit(t, "deploy", "cicd", f))) {
			t.Errorf("%s: %s", f, p)
		}
	}
}

func TestCheckStepsCatchesMissingGate(t *testing.T) {
	data := string(readKit(t, "deploy", "cicd", "github", "deploy.yml"))
	for _, drop := range []string{"rollsafe check rendered.yaml", "deploy/cicd/rollout-gate.sh"} {
		broken := strings.ReplaceAll(data, drop, "true")
		if probs := CheckSteps(broken); len(probs) == 0 {
			t.Errorf("without %q: no problem reported", drop)
		}
	}
}
