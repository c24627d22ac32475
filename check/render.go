package check

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/rollsafe/rollsafe/defaults"
)

// RenderJSON writes {"findings":[...]} (and "recommendations" when asked).
func RenderJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// TextOptions shape the human output.
type TextOptions struct {
	Color bool // ANSI colours: only on a terminal
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
)

// RenderText writes findings grouped by workload, then recommendations,
// then one summary line.
func RenderText(w io.Writer, res *Result, o TextOptions) error {
	paint := func(code, s string) string {
		if !o.Color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	var order []string
	groups := map[string][]Finding{}
	for _, f := range res.Findings {
		if _, ok := groups[f.Workload]; !ok {
			order = append(order, f.Workload)
		}
		groups[f.Workload] = append(groups[f.Workload], f)
	}
	counts := map[Severity]int{}
	for _, wl := range order {
		b.WriteString(paint(ansiBold, wl) + "\n")
		for _, f := range groups[wl] {
			counts[f.Severity]++
			sev := fmt.Sprintf("%-7s", f.Severity)
			switch f.Severity {
			case Error:
				sev = paint(ansiRed, sev)
			case Warning:
				sev = paint(ansiYellow, sev)
			default:
				sev = paint(ansiBlue, sev)
			}
			loc := f.File
			if f.Line > 0 {
				loc = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			fmt.Fprintf(&b, "  %s %s  %s\n", sev, paint(ansiBold, f.Rule), paint(ansiDim, strings.TrimSpace(f.Object+"  "+loc)))
			fmt.Fprintf(&b, "          %s\n", f.Message)
			if f.Fix != "" {
				b.WriteString("          fix:\n")
				for _, l := range strings.Split(f.Fix, "\n") {
					b.WriteString("            " + l + "\n")
				}
			}
		}
		b.WriteString("\n")
	}
	for _, r := range res.Recommendations {
		fmt.Fprintf(&b, "%s %s\n", paint(ansiBold, "recommended for"), r.Workload)
		delay := "" // none for pods no cloud load balancer targets (ingress-nginx alone)
		if r.DeregistrationDelay > 0 {
			delay = ", " + delayName(r) + " " + n(r.DeregistrationDelay)
		}
		fmt.Fprintf(&b, "  preStop sleep %s (necessary: %s), terminationGracePeriodSeconds %s%s\n",
			n(r.PreStop), n(r.MinPreStop), n(r.TerminationGracePeriod), delay)
		for _, st := range r.Settings {
			if st.Key == "" {
				fmt.Fprintf(&b, "    %s: %s\n", st.Object, st.Value)
				continue
			}
			fmt.Fprintf(&b, "    %s: %s: %q\n", st.Object, st.Key, st.Value)
		}
		if r.DrainDelay > 0 {
			fmt.Fprintf(&b, "  app drain with \"Connection: close\" %s after SIGTERM (DRAIN_DELAY; kube-proxy keeps the load balancer's connections on the old pod)\n", secs(r.DrainDelay))
		}
		if r.LBIdleTimeout > 0 {
			fmt.Fprintf(&b, "  app keep-alive > %s (load balancer idle timeout %s)\n", secs(r.MinAppIdleTimeout-1e9), secs(r.LBIdleTimeout))
		}
		fmt.Fprintf(&b, "  then: new pod Ready in ≤ %s, one replacement ≤ %s, whole rollout ≤ %s\n",
			secs(r.ReadyStep), secs(r.PodReplacement), secs(r.Rollout))
		var from []string
		for _, in := range r.Inputs {
			s := in.Name + " " + secs(in.Value) + " (" + in.Source
			switch {
			case in.Flag == "": // no flag sets it
			case in.Source == "default":
				s += ", " + in.Flag + " changes it"
			default:
				s += " " + in.Flag
			}
			if in.Note != "" {
				s += "; " + in.Note
			}
			from = append(from, s+")")
		}
		if len(from) > 0 {
			fmt.Fprintf(&b, "  from: %s\n", strings.Join(from, ", "))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d objects, %d workloads: %d errors, %d warnings, %d info\n",
		res.Objects, len(res.Workloads), counts[Error], counts[Warning], counts[Info])
	_, err := io.WriteString(w, b.String())
	return err
}

// SARIF 2.1.0, the subset rollsafe writes.
const (
	SARIFSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	rulesHelpURI = "https://github.com/rollsafe/rollsafe/blob/main/docs/rules/"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string      `json:"id"`
	ShortDescription     sarifText   `json:"shortDescription"`
	HelpURI              string      `json:"helpUri"`
	DefaultConfiguration sarifConfig `json:"defaultConfiguration"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID     string            `json:"ruleId"`
	RuleIndex  int               `json:"ruleIndex"`
	Level      string            `json:"level"`
	Message    sarifText         `json:"message"`
	Locations  []sarifLocation   `json:"locations"`
	Properties map[string]string `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// RenderSARIF writes a SARIF 2.1.0 log: one run, every rule described,
// each finding located at the file and line of the offending field.
func RenderSARIF(w io.Writer, res *Result, version string) error {
	d := sarifDriver{Name: "rollsafe", Version: version, InformationURI: "https://github.com/rollsafe/rollsafe"}
	index := map[string]int{}
	for i, r := range Rules {
		index[r.ID] = i
		d.Rules = append(d.Rules, sarifRule{ID: r.ID, ShortDescription: sarifText{r.Summary},
			HelpURI: rulesHelpURI + r.ID + ".md", DefaultConfiguration: sarifConfig{sarifLevel(r.Severity)}})
	}
	run := sarifRun{Tool: sarifTool{Driver: d}, Results: []sarifResult{}}
	for _, f := range res.Findings {
		loc := sarifLocation{LogicalLocations: []sarifLogical{{FullyQualifiedName: f.Object, Kind: "resource"}}}
		if f.File != "" && f.File != "-" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: filepath.ToSlash(f.File)}}
			if f.Line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line}
			}
		}
		run.Results = append(run.Results, sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule],
			Level: sarifLevel(f.Severity), Message: sarifText{f.Message + "\nFix:\n" + f.Fix},
			Locations: []sarifLocation{loc}, Properties: map[string]string{"fix": f.Fix, "workload": f.Workload}})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

// delayName is what the recommended delay is called where it goes: a
// Classic ELB's connection draining timeout, else the deregistration delay.
func delayName(r Recommendation) string {
	clb := len(r.Settings) > 0
	for _, st := range r.Settings {
		if st.Key != defaults.CLBDrainingEnabledAnnotation && st.Key != defaults.CLBDrainingTimeoutAnnotation {
			clb = false
		}
	}
	if clb {
		return "connection draining timeout"
	}
	return "deregistration delay"
}
