// Package logs summarises ALB access logs — requests and failures per
// target, per status (load balancer and target), per minute and per
// error_reason — and, given a timeline of target states, lists the failures
// the load balancer sent to a draining target. `rollsafe logs` renders it.
package logs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options say how to read the logs and what to do besides summarising.
type Options struct {
	// Workers is how many goroutines parse lines (0: one per CPU).
	Workers int
	// S3Endpoint and Region are for s3:// inputs ("": AWS and the AWS
	// config chain's region).
	S3Endpoint, Region string
	// Targets, if set, joins every failure to its target's state.
	Targets *Targets
	// Record, if set, receives every line as a timeline request record.
	Record *timeline.Writer
	// Counters, if set, is updated while the logs are read (a progress line).
	Counters *accesslog.Counters
}

// Targets are the target states of a timeline file, by target.
type Targets struct {
	Path string
	ix   *accesslog.TargetIndex
}

// LoadTargets reads the target records of the NDJSON timeline at path; a
// file without any is an error, since every failure would then look as if
// it had not hit a draining target.
func LoadTargets(path string) (*Targets, error) {
	var recs []timeline.Record
	err := timeline.ReadFile(path, func(r *timeline.Record) error {
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ix := accesslog.NewTargetIndex(recs)
	if ix.Len() == 0 {
		return nil, fmt.Errorf("%s: no target records (kind \"target\" with an object)", path)
	}
	return &Targets{Path: path, ix: ix}, nil
}

// Result is what the logs held: `rollsafe logs -o json` prints it as it is.
type Result struct {
	Files        int                 `json:"files"`
	Bytes        int64               `json:"bytes"`
	Lines        int64               `json:"lines"`
	Requests     int64               `json:"requests"`
	Failures     int64               `json:"failures"`
	First        time.Time           `json:"first,omitzero"`
	Last         time.Time           `json:"last,omitzero"`
	Seconds      float64             `json:"seconds"`
	Interrupted  bool                `json:"interrupted,omitempty"`
	Targets      []Bucket            `json:"targets"`
	ELBStatus    []StatusCount       `json:"elb_status"`
	TargetStatus []StatusCount       `json:"target_status"`
	Minutes      []Bucket            `json:"minutes"`
	ErrorReasons []StatusCount       `json:"error_reasons"`
	Draining     *DrainingResult     `json:"draining,omitempty"`
	Failed       []accesslog.Failure `json:"failed_requests"`
	NotListed    int64               `json:"failed_requests_not_listed,omitempty"`
	BadLines     int64               `json:"bad_lines"`
	BadFiles     int                 `json:"bad_files"`
	Problems     []string            `json:"problems,omitempty"`
	// ProblemCount counts every problem; Problems holds the first ones.
	ProblemCount int64 `json:"-"`
}

// Bucket is requests and failures under one key (a target or a minute).
type Bucket struct {
	Key string `json:"key"`
	accesslog.Count
}

// StatusCount is how often one status (or error reason) appeared; "-" for none.
type StatusCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// DrainingResult lists failures whose target was draining.
type DrainingResult struct {
	Timeline       string              `json:"timeline"`
	TargetsKnown   int                 `json:"targets_known"`
	UnknownTargets []string            `json:"unknown_targets,omitempty"` // failed targets the timeline never mentions
	Failures       []accesslog.Failure `json:"failures"`
}

// Summarize reads every input (files, directories, .gz, s3://, "-") and
// sums it up. Lines or files that cannot be read are in the Result's
// problems, not an error; an input that cannot be listed or opened at all
// is (an *accesslog.InputError). When ctx ends mid-way the Result covers
// what was read and says Interrupted.
func Summarize(ctx context.Context, inputs []string, o Options) (*Result, error) {
	scanOpts := accesslog.Options{Workers: o.Workers, Counters: o.Counters}
	if hasS3(inputs) {
		cl, err := accesslog.NewS3(ctx, accesslog.S3Config{Endpoint: o.S3Endpoint, Region: o.Region})
		if err != nil {
			return nil, err
		}
		scanOpts.S3 = cl
	}
	start := time.Now()
	var mu sync.Mutex
	var parts []*accesslog.Summary
	st, err := accesslog.Scan(ctx, inputs, scanOpts, func() accesslog.Visitor {
		s := accesslog.NewSummary()
		mu.Lock()
		parts = append(parts, s)
		mu.Unlock()
		if o.Record != nil {
			return accesslog.Visitors{s, accesslog.Recorder{W: o.Record}}
		}
		return s
	})
	elapsed := time.Since(start)
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && !interrupted {
		return nil, err
	}
	sum := accesslog.NewSummary()
	for _, p := range parts {
		sum.Merge(p)
	}
	sum.SortFailures()
	res := buildResult(sum, &st, elapsed, interrupted)
	if t := o.Targets; t != nil {
		res.Draining = &DrainingResult{Timeline: t.Path, TargetsKnown: t.ix.Len(),
			Failures: sum.JoinTargets(t.ix), UnknownTargets: unknownTargets(sum, t.ix)}
		res.Failed = sum.FailureList
	}
	return res, nil
}

func hasS3(inputs []string) bool {
	return slices.ContainsFunc(inputs, func(s string) bool { return strings.HasPrefix(s, "s3://") })
}

// unknownTargets lists failed targets the timeline never mentions: a
// timeline from another target group or time range would otherwise make
// "no failure on a draining target" look like a clean bill.
func unknownTargets(sum *accesslog.Summary, ix *accesslog.TargetIndex) []string {
	var out []string
	for _, f := range sum.FailureList {
		if f.Target != accesslog.NoTarget && !ix.Has(f.Target) && !slices.Contains(out, f.Target) {
			out = append(out, f.Target)
		}
	}
	slices.Sort(out)
	return out
}

func buildResult(sum *accesslog.Summary, st *accesslog.Stats, elapsed time.Duration, interrupted bool) *Result {
	res := &Result{
		Files: st.Files, Bytes: st.Bytes, Lines: st.Lines, Requests: sum.Requests, Failures: sum.Failures,
		First: sum.First, Last: sum.Last, Seconds: elapsed.Seconds(), Interrupted: interrupted,
		Failed: sum.FailureList, NotListed: sum.FailuresNotListed, BadLines: st.BadLines, BadFiles: st.BadFiles,
		ProblemCount: st.ProblemCount,
	}
	for k, c := range sum.Targets {
		res.Targets = append(res.Targets, Bucket{Key: k, Count: *c})
	}
	slices.SortFunc(res.Targets, func(a, b Bucket) int {
		if a.Failures != b.Failures {
			return int(b.Failures - a.Failures)
		}
		if a.Requests != b.Requests {
			return int(b.Requests - a.Requests)
		}
		return strings.Compare(a.Key, b.Key)
	})
	for m, c := range sum.Minutes {
		res.Minutes = append(res.Minutes, Bucket{Key: time.Unix(m*60, 0).UTC().Format("2006-01-02T15:04Z"), Count: *c})
	}
	slices.SortFunc(res.Minutes, func(a, b Bucket) int { return strings.Compare(a.Key, b.Key) })
	res.ELBStatus = statusCounts(sum.ELBStatus)
	res.TargetStatus = statusCounts(sum.TargetStatus)
	for k, n := range sum.ErrorReasons {
		res.ErrorReasons = append(res.ErrorReasons, StatusCount{Key: k, Count: n})
	}
	slices.SortFunc(res.ErrorReasons, func(a, b StatusCount) int { return strings.Compare(a.Key, b.Key) })
	for _, p := range st.Problems {
		res.Problems = append(res.Problems, p.Error())
	}
	return res
}

func statusCounts(m map[int]int64) []StatusCount {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make([]StatusCount, 0, len(codes))
	for _, c := range codes {
		k := "-"
		if c != 0 {
			k = fmt.Sprint(c)
		}
		out = append(out, StatusCount{Key: k, Count: m[c]})
	}
	return out
}
