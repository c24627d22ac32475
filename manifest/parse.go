package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Error is one unusable piece of input, located by file, line and the
// 0-based index of the YAML document in its file.
type Error struct {
	File string
	Line int // 0 when the parser could not tell
	Doc  int // -1 when the error is about the path as a whole (missing, empty, unreadable)
	Msg  string
}

func (e *Error) Error() string { return locate(e.File, e.Line, e.Doc) + e.Msg }

// Note is a piece of input skipped on purpose, told so that nothing is
// skipped silently: a YAML document that is not a Kubernetes object (a CI
// pipeline, a Helm Chart.yaml), a kustomization rendered instead of its
// files, a file its directory's kustomization does not use.
type Note struct {
	File string
	Line int
	Doc  int // -1 when the note is about the path as a whole
	Msg  string
}

func (n Note) String() string { return locate(n.File, n.Line, n.Doc) + n.Msg }

func locate(file string, line, doc int) string {
	loc := file
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	if doc < 0 {
		return loc + ": "
	}
	return fmt.Sprintf("%s: document %d: ", loc, doc)
}

// maxNodes bounds the work one document may cause once YAML aliases are
// expanded, so a "billion laughs" input is an error, not an out-of-memory.
const maxNodes = 1 << 20

// Parse reads every document of one file (YAML or JSON, one or many
// documents, List kinds unrolled). It returns the objects it could read and,
// for the rest, *Error values joined together: a bad document does not hide
// the good ones before it. YAML cannot resynchronise after a syntax error,
// so the documents after one are lost and the error says where it stopped.
//
// Documents that are not Kubernetes objects are errors here; ParseNotes
// skips them with a Note instead.
func Parse(name string, data []byte) ([]*Object, error) {
	objs, notes, err := ParseNotes(name, data)
	if len(notes) == 0 {
		return objs, err
	}
	errs := []error{}
	for _, n := range notes {
		errs = append(errs, &Error{File: n.File, Line: n.Line, Doc: n.Doc, Msg: strings.TrimPrefix(n.Msg, "skipped: ")})
	}
	return objs, errors.Join(append(errs, Errors(err)...)...)
}

// ParseNotes is Parse for input that may mix Kubernetes objects with other
// YAML (a directory holding CI pipelines, a Helm Chart.yaml): a document
// with neither apiVersion nor kind, with no kind, whose root is not a
// mapping, or that is a kustomization, is skipped with a Note. A document
// with a kind but no apiVersion is still an error: it meant to be an object.
func ParseNotes(name string, data []byte) ([]*Object, []Note, error) {
	if looksJSON(data) {
		// Tabs are plain whitespace in JSON but not allowed as YAML
		// indentation; JSON forbids raw tabs inside strings, so this is safe.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []*Object
	var notes []Note
	var errs []error
	for doc := 0; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, yamlError(name, doc, err))
			break
		}
		root := documentContent(&n)
		if root == nil {
			continue // an empty document, e.g. a template that rendered nothing
		}
		if note := notObject(name, doc, root); note != nil {
			notes = append(notes, *note)
			continue
		}
		got, err := fromNode(name, doc, root)
		objs = append(objs, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return objs, notes, errors.Join(errs...)
}

// notObject says why a document's root is not a Kubernetes object, or nil
// when it is one (or meant to be one, and so gets fromNode's error).
func notObject(file string, doc int, n *yaml.Node) *Note {
	n = deref(n)
	note := &Note{File: file, Line: n.Line, Doc: doc}
	if n.Kind != yaml.MappingNode {
		note.Msg = "skipped: not a Kubernetes object (a " + kindName(n) + ", not a mapping)"
		return note
	}
	apiVersion, kind := scalar(n, "apiVersion"), scalar(n, "kind")
	switch {
	case kind == "" && apiVersion == "":
		note.Msg = "skipped: not a Kubernetes object (no apiVersion or kind)"
	case kind == "":
		note.Msg = "skipped: not a Kubernetes object (apiVersion " + asWritten(apiVersion) + " but no kind)"
	case strings.HasPrefix(apiVersion, "kustomize.config.k8s.io/"):
		note.Msg = "skipped: a " + kind + ": give its directory to render it"
	default:
		return nil
	}
	return note
}

// asWritten is a value from the input as a message shows it: as written, or
// quoted when it holds spaces or control characters (a folded multi-line
// scalar would break the one-line message).
func asWritten(v string) string {
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

func looksJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

var yamlLine = regexp.MustCompile(`line (\d+):? ?`)

// yamlError turns the YAML library's message into a located Error.
func yamlError(file string, doc int, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.Join(strings.Fields(msg), " ")
	e := &Error{File: file, Doc: doc}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		e.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	e.Msg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(msg, "unmarshal errors:")), ": ")
	if e.Msg == "" {
		e.Msg = "invalid YAML"
	}
	return e
}

func documentContent(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	return n
}

// fromNode reads one document's root node: an object or a List of them.
func fromNode(file string, doc int, n *yaml.Node) ([]*Object, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: n.Line, Doc: doc,
			Msg: fmt.Sprintf("expected a Kubernetes object (a mapping), found a %s", kindName(n))}
	}
	apiVersion, kind := scalar(n, "apiVersion"), scalar(n, "kind")
	if kind == "" || apiVersion == "" {
		return nil, &Error{File: file, Line: n.Line, Doc: doc,
			Msg: "not a Kubernetes object: apiVersion and kind are required"}
	}
	if items := mapValue(n, "items"); items != nil && strings.HasSuffix(kind, "List") {
		items = deref(items)
		if items.Kind != yaml.SequenceNode {
			return nil, &Error{File: file, Line: items.Line, Doc: doc, Msg: kind + ".items must be a list"}
		}
		var objs []*Object
		var errs []error
		for _, it := range items.Content {
			got, err := fromNode(file, doc, it)
			objs = append(objs, got...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		return objs, errors.Join(errs...)
	}
	o := &Object{APIVersion: apiVersion, Kind: kind, node: n,
		Source: Source{File: file, Line: n.Line, Doc: doc}, Duplicates: duplicateKeys(n)}
	if md := mapValue(n, "metadata"); md != nil {
		o.Name, o.Namespace = scalar(deref(md), "name"), scalar(deref(md), "namespace")
	}
	spec := typedKind(apiVersion, kind)
	if spec == nil {
		return []*Object{o}, nil // a kind rollsafe does not judge
	}
	if err := decodeTyped(o, spec.new); err != nil {
		if spec.lenient {
			return []*Object{o}, nil // read for hints only: kept untyped
		}
		return nil, err
	}
	return []*Object{o}, nil
}

// typedKind returns the spec of a kind rollsafe reads (kinds); nil for
// any other kind.
func typedKind(apiVersion, kind string) *kindSpec {
	group := ""
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		group = apiVersion[:i]
	}
	for _, k := range kinds {
		if k.kind == kind && k.accepts(group, apiVersion) {
			return &k
		}
	}
	return nil
}

// decodeTyped fills the typed object through JSON, which is how the API
// server reads YAML too, so field names and formats behave as kubectl's.
func decodeTyped(o *Object, newObj func() runtime.Object) error {
	budget := maxNodes
	v, err := toValue(o.node, &budget)
	if err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			return &Error{File: o.Source.File, Line: ve.line, Doc: o.Source.Doc, Msg: ve.msg}
		}
		return &Error{File: o.Source.File, Line: o.Source.Line, Doc: o.Source.Doc, Msg: err.Error()}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return &Error{File: o.Source.File, Line: o.Source.Line, Doc: o.Source.Doc, Msg: err.Error()}
	}
	obj := newObj()
	if err := json.Unmarshal(raw, obj); err != nil {
		e := &Error{File: o.Source.File, Line: o.Source.Line, Doc: o.Source.Doc,
			Msg: fmt.Sprintf("%s %q: %v", o.Kind, o.Name, err)}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if l := fieldLine(o.node, strings.Split(te.Field, ".")); l > 0 {
				e.Line = l
			}
			e.Msg = fmt.Sprintf("%s %q: field %s: cannot use a %s as %s", o.Kind, o.Name, te.Field, te.Value, te.Type)
		}
		return e
	}
	if ing, ok := obj.(*networkingv1beta1.Ingress); ok {
		obj = ingressV1(ing)
	}
	o.Obj = obj
	return nil
}

// fieldLine finds a dotted JSON field path (without list indexes, as
// encoding/json reports it) in the node tree, searching every list item.
func fieldLine(n *yaml.Node, path []string) int {
	n = deref(n)
	if len(path) == 0 || path[0] == "" {
		return n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == path[0] {
				if len(path) == 1 {
					return n.Content[i].Line
				}
				return fieldLine(n.Content[i+1], path[1:])
			}
		}
	case yaml.SequenceNode:
		for _, it := range n.Content {
			if l := fieldLine(it, path); l > 0 {
				return l
			}
		}
	}
	return 0
}

type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return e.msg }

// toValue converts a node into the plain values encoding/json marshals,
// expanding aliases and merge keys within the node budget.
func toValue(n *yaml.Node, budget *int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, &valueError{line: n.Line, msg: "document too large once YAML aliases are expanded"}
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &valueError{line: n.Line, msg: "unknown alias"}
		}
		return toValue(n.Alias, budget)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toValue(n.Content[0], budget)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValue(c, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if err := mergeInto(out, vn, budget); err != nil {
					return nil, err
				}
				continue
			}
			kd := deref(k)
			if kd.Kind != yaml.ScalarNode {
				return nil, &valueError{line: k.Line, msg: "mapping keys must be strings"}
			}
			v, err := toValue(vn, budget)
			if err != nil {
				return nil, err
			}
			out[kd.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil, &valueError{line: n.Line, msg: "unsupported YAML node"}
}

func mergeInto(out map[string]any, vn *yaml.Node, budget *int) error {
	v, err := toValue(vn, budget)
	if err != nil {
		return err
	}
	var maps []any
	switch m := v.(type) {
	case map[string]any:
		maps = []any{m}
	case []any:
		maps = m
	}
	for _, mm := range maps {
		m, ok := mm.(map[string]any)
		if !ok {
			return &valueError{line: vn.Line, msg: "merge key << needs a mapping"}
		}
		for k, x := range m {
			if _, set := out[k]; !set {
				out[k] = x
			}
		}
	}
	return nil
}

func scalarValue(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!!str", "!!binary", "":
		return n.Value, nil
	case "!!timestamp":
		return n.Value, nil // Kubernetes reads timestamps as strings
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, &valueError{line: n.Line, msg: err.Error()}
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, &valueError{line: n.Line, msg: fmt.Sprintf("%q is not a finite number", n.Value)}
		}
	case time.Time:
		return n.Value, nil
	}
	return v, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("scalar %q", truncate(n.Value, 40))
	}
	return "non-mapping node"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	v := mapValue(n, key)
	if v == nil {
		return ""
	}
	v = deref(v)
	if v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// ingressV1 converts the pre-v1 Ingress shape (serviceName/servicePort,
// still in many charts and in seed 003) to networking.k8s.io/v1.
func ingressV1(in *networkingv1beta1.Ingress) *networkingv1.Ingress {
	out := &networkingv1.Ingress{TypeMeta: in.TypeMeta, ObjectMeta: in.ObjectMeta}
	out.APIVersion = "networking.k8s.io/v1"
	out.Spec.IngressClassName = in.Spec.IngressClassName
	backend := func(b *networkingv1beta1.IngressBackend) *networkingv1.IngressBackend {
		if b == nil {
			return nil
		}
		nb := &networkingv1.IngressBackend{Resource: b.Resource}
		if b.ServiceName != "" {
			nb.Service = &networkingv1.IngressServiceBackend{Name: b.ServiceName}
			if b.ServicePort.Type == 0 {
				nb.Service.Port.Number = b.ServicePort.IntVal
			} else {
				nb.Service.Port.Name = b.ServicePort.StrVal
			}
		}
		return nb
	}
	out.Spec.DefaultBackend = backend(in.Spec.Backend)
	for _, r := range in.Spec.Rules {
		nr := networkingv1.IngressRule{Host: r.Host}
		if r.HTTP != nil {
			nr.HTTP = &networkingv1.HTTPIngressRuleValue{}
			for _, p := range r.HTTP.Paths {
				nb := backend(&p.Backend)
				nr.HTTP.Paths = append(nr.HTTP.Paths, networkingv1.HTTPIngressPath{Path: p.Path, Backend: *nb})
			}
		}
		out.Spec.Rules = append(out.Spec.Rules, nr)
	}
	return out
}
