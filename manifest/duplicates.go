package manifest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DuplicateKey is a mapping key an object's YAML gives twice. Decoding
// keeps the later value (this package, as encoding/json does for JSON),
// so whatever the earlier one held is lost: seed 003's Service gave
// `ports:` twice and lost port 80.
type DuplicateKey struct {
	// Path leads from the object's root to the mapping holding Key: map
	// keys, and list indexes in decimal.
	Path []string
	Key  string
	// Line is the later key's line, FirstLine the earlier one's.
	Line, FirstLine int
	// Value and FirstValue are the two values as plain data (maps, lists,
	// strings, numbers); nil when a value cannot be read (an alias loop).
	Value, FirstValue any
}

// duplicateKeys finds every mapping key given twice under n. Aliases are
// not followed: the nodes they point to are walked where they are
// defined, so each node is visited once.
func duplicateKeys(n *yaml.Node) []DuplicateKey {
	budget := maxNodes // one for all the values, so aliases cannot multiply the work
	return duplicatesUnder(n, nil, &budget)
}

func duplicatesUnder(n *yaml.Node, path []string, budget *int) []DuplicateKey {
	var out []DuplicateKey
	switch n.Kind {
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
				if j, seen := first[k.Value]; seen {
					out = append(out, DuplicateKey{Path: path, Key: k.Value, Line: k.Line,
						FirstLine: n.Content[j].Line, Value: plain(v, budget), FirstValue: plain(n.Content[j+1], budget)})
				} else {
					first[k.Value] = i
				}
			}
			out = append(out, duplicatesUnder(v, append(path[:len(path):len(path)], k.Value), budget)...)
		}
	case yaml.SequenceNode:
		for i, it := range n.Content {
			out = append(out, duplicatesUnder(it, append(path[:len(path):len(path)], strconv.Itoa(i)), budget)...)
		}
	}
	return out
}

// plain is n as the values an object is decoded from; nil when n is
// unusable (its document's error says why) or the budget is spent.
func plain(n *yaml.Node, budget *int) any {
	v, err := toValue(n, budget)
	if err != nil {
		return nil
	}
	return v
}

// duplicateErrors locates the duplicate keys that made a kustomize build
// fail. kustomize refuses a resource that gives a key twice (yaml.v3's
// "mapping key ... already defined"), but its message names no file and
// its line numbers are not the file's; each duplicate in the files the
// build read is reported at its own file:line instead.
func duplicateErrors(dir string, b *build) []error {
	if !strings.Contains(b.err.Error(), "already defined") {
		return nil
	}
	files := make([]string, 0, len(b.read))
	for f := range b.read {
		files = append(files, f)
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for doc := 0; ; doc++ {
			var n yaml.Node
			if dec.Decode(&n) != nil {
				break
			}
			root := documentContent(&n)
			if root == nil {
				continue
			}
			for _, d := range duplicateKeys(root) {
				errs = append(errs, &Error{File: shown(dir, f), Line: d.Line, Doc: doc, Msg: fmt.Sprintf(
					"mapping key %q given twice (first at line %d): kustomize refuses to render it", d.Key, d.FirstLine)})
			}
		}
	}
	return errs
}

// shown is the absolute path f as seen from dir, the path the user gave:
// deploy/base/svc.yaml rather than /home/.../deploy/base/svc.yaml.
func shown(dir, f string) string {
	rel, err := filepath.Rel(absPath(dir), f)
	if err != nil || strings.HasPrefix(rel, "..") {
		return f
	}
	return filepath.Join(dir, rel)
}
