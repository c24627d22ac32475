// Package manifest turns Kubernetes manifests — files, directories, stdin
// (helm template / kustomize build output), kustomization directories
// (rendered with kustomize's krusty), multi-document YAML, JSON, List
// kinds, or a live cluster — into typed k8s.io/api objects that remember
// where they came from: file, line and document index, down to the line of
// any field, so a finding can point at the offending line.
//
// YAML that is not a Kubernetes object (a CI pipeline beside the
// manifests) is skipped with a Note; a path with no object at all is an
// Error, so that an empty input never passes a gate.
//
// Kinds rollsafe does not judge are kept as Objects with a nil Obj, never
// an error: a chart's ConfigMaps and CRDs must not make a check fail.
package manifest

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// Source is where an object was read from.
type Source struct {
	File string `json:"file,omitempty"` // path as given; "-" for stdin; empty for a live cluster
	Line int    `json:"line,omitempty"` // 1-based line of the object's first key; 0 when unknown
	Doc  int    `json:"doc"`            // 0-based index of the YAML document in the file
}

func (s Source) String() string {
	switch {
	case s.File == "":
		return "cluster"
	case s.Line == 0:
		return s.File
	}
	return s.File + ":" + strconv.Itoa(s.Line)
}

// Object is one Kubernetes object read from the input.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string // as written; empty means the namespace the user applies into
	Name       string
	Source     Source
	// Obj is the typed object for the kinds rollsafe reads (the kinds
	// list); nil for every other kind.
	Obj runtime.Object
	// Duplicates are the mapping keys its YAML gives twice; Obj holds the
	// later value of each. Empty for live objects and JSON from a server.
	Duplicates []DuplicateKey

	node *yaml.Node // the object's mapping node; nil for live objects
}

// Ref names the object as Kind/namespace/name, the form findings use.
func (o *Object) Ref(defaultNS string) string {
	ns := o.Namespace
	if ns == "" {
		ns = defaultNS
	}
	if o.Kind == "Namespace" || o.Kind == "IngressClass" {
		return o.Kind + "/" + o.Name
	}
	return fmt.Sprintf("%s/%s/%s", o.Kind, ns, o.Name)
}

// Line returns the line of the field at path (map keys, or decimal indexes
// into lists), e.g. Line("spec", "template", "spec", "containers", "0",
// "lifecycle", "preStop"). When the field is absent it returns the line of
// its deepest present ancestor — where the fix goes — and when nothing is
// known (live objects) the object's own line.
func (o *Object) Line(path ...string) int {
	if o.node == nil {
		return o.Source.Line
	}
	n := o.node
	line := n.Line
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			break
		}
		n = next
		line = n.Line
	}
	return line
}

// child steps into a mapping by key (returning the key node, whose line is
// the field's line, with the value reachable through it) or a sequence by index.
func child(n *yaml.Node, p string) *yaml.Node {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				// Keep the key's line but walk on through the value.
				v := *deref(n.Content[i+1])
				v.Line = n.Content[i].Line
				return &v
			}
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(p)
		if err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}
