// Package validate checks rollsafe's deploy kit offline: the Dockerfile, the
// kustomize overlays and the five CI/CD pipelines, each with the linter or
// schema its ecosystem uses. It is its own module so that the validators'
// dependencies (actionlint, buildkit, kustomize, a YAML 1.2 parser) stay out
// of rollsafe's go.mod.
package validate
