package validate

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	digest "github.com/opencontainers/go-digest"
)

// DockerfileLint is the result of buildkit's Dockerfile checks (the ones
// `docker build --check` runs).
type DockerfileLint struct {
	Warnings []string // "RuleName: detail (line N)"
	// Error is a Dockerfile the frontend cannot convert at all.
	Error string
	// BaseImages are the images the linter asked the resolver about.
	BaseImages []string
}

// LintDockerfile runs buildkit's Dockerfile frontend in lint mode over every
// stage. Base images are "resolved" by a stub that answers with an empty
// linux/amd64 config, so the check never goes online; the checks that need
// real image metadata are the only ones this cannot run.
func LintDockerfile(ctx context.Context, name string, dt []byte) (*DockerfileLint, error) {
	res := &stubResolver{}
	sm := llb.NewSourceMap(nil, name, "Dockerfile", dt)
	sm.Definition = &llb.Definition{} // what the lint result's source entry is built from
	results, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{},
		SourceMap:    sm,
		MetaResolver: res,
	})
	if err != nil {
		return nil, err
	}
	out := &DockerfileLint{BaseImages: res.refs}
	for _, w := range results.Warnings {
		out.Warnings = append(out.Warnings, formatWarning(w))
	}
	if results.Error != nil {
		out.Error = results.Error.Message
	}
	return out, nil
}

func formatWarning(w lint.Warning) string {
	s := w.RuleName + ": " + w.Detail
	if w.Location != nil && len(w.Location.Ranges) > 0 {
		s += fmt.Sprintf(" (line %d)", w.Location.Ranges[0].Start.Line)
	}
	return s
}

// stubResolver stands in for a registry: every image exists, is
// linux/amd64, and has an empty config.
type stubResolver struct {
	mu   sync.Mutex
	refs []string
}

func (r *stubResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r.mu.Lock()
	r.refs = append(r.refs, ref)
	r.mu.Unlock()
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	return ref, digest.FromBytes(cfg), cfg, nil
}
