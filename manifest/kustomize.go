package manifest

import (
	"os"
	"path/filepath"
	"sync"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// build is one kustomization rendered: its YAML or the error, and every
// file the build read (absolute paths), so that a walk does not read them
// again as loose manifests.
type build struct {
	yaml []byte
	err  error
	read map[string]bool
}

// render builds the kustomization in dir as `kubectl kustomize dir` and
// `kustomize build dir` do: the same library (krusty) with its default
// options (files only from within the kustomization's tree, no plugins).
//
// The build asks kustomize for origin annotations (buildMetadata:
// [originAnnotations], added in memory to the kustomization, never on
// disk), so that each rendered object can be located in the file it came
// from: see locateOrigins.
func render(dir string) *build {
	fs := &trackingFS{FileSystem: filesys.MakeFsOnDisk(), read: map[string]bool{}}
	if kf, ok := kustomizationIn(dir); ok {
		fs.root = absPath(kf)
	}
	b := &build{read: fs.read}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err == nil {
		b.yaml, err = m.AsYaml()
	}
	b.err = err
	return b
}

// trackingFS records the files a build reads.
type trackingFS struct {
	filesys.FileSystem
	root string // the built kustomization file, read with origin annotations asked for
	mu   sync.Mutex
	read map[string]bool
}

func (t *trackingFS) note(path string) {
	t.mu.Lock()
	t.read[absPath(path)] = true
	t.mu.Unlock()
}

func (t *trackingFS) ReadFile(path string) ([]byte, error) {
	t.note(path)
	data, err := t.FileSystem.ReadFile(path)
	if err == nil && t.root != "" && absPath(path) == t.root {
		data = withOriginAnnotations(data)
	}
	return data, err
}

// originKey is the annotation kustomize's originAnnotations writes.
const originKey = "config.kubernetes.io/origin"

// withOriginAnnotations adds buildMetadata: [originAnnotations] to a
// kustomization that sets no buildMetadata; anything it cannot read is
// left as it is (kustomize then says what is wrong with it).
func withOriginAnnotations(data []byte) []byte {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return data
	}
	root := documentContent(&doc)
	if root == nil || root.Kind != yaml.MappingNode || mapValue(root, "buildMetadata") != nil {
		return data
	}
	root.Content = append(root.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "buildMetadata"},
		&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "originAnnotations"}}})
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return data
	}
	return out
}

// locateOrigins points each object rendered from the kustomization in dir
// at the file and line it came from (a base's deployment.yaml, not the
// rendered stream, which is no file the user has), and drops the origin
// annotation the build added. Field lines are the origin file's: a value
// an overlay patches is located at that field in the base, or at its
// deepest ancestor there. Objects with no local origin (generated, remote)
// stay located at the kustomization file, with no line.
func locateOrigins(dir string, objs []*Object) {
	files := map[string][]*Object{}
	for _, o := range objs {
		origin := ""
		if o.node != nil {
			if md := mapValue(deref(o.node), "metadata"); md != nil {
				if an := mapValue(deref(md), "annotations"); an != nil {
					origin = scalar(deref(an), originKey)
				}
			}
		}
		if o.Obj != nil {
			if acc, err := meta.Accessor(o.Obj); err == nil {
				if an := acc.GetAnnotations(); an != nil {
					delete(an, originKey)
					if len(an) == 0 {
						an = nil
					}
					acc.SetAnnotations(an)
				}
			}
		}
		o.node, o.Source.Line = nil, 0
		var og struct {
			Path string `yaml:"path"`
			Repo string `yaml:"repo"`
		}
		if origin == "" || yaml.Unmarshal([]byte(origin), &og) != nil || og.Path == "" || og.Repo != "" {
			continue
		}
		file := filepath.Join(dir, og.Path)
		src, ok := files[file]
		if !ok {
			if data, err := os.ReadFile(file); err == nil {
				src, _, _ = ParseNotes(file, data)
			}
			files[file] = src
		}
		if from := sameObject(o, src); from != nil {
			o.node, o.Source = from.node, from.Source
		}
	}
}

// sameObject finds o's origin among the objects of its origin file: the
// same kind and name, else the only one of that kind (a name prefix or
// suffix changed the name).
func sameObject(o *Object, src []*Object) *Object {
	var kind []*Object
	for _, s := range src {
		if s.Kind != o.Kind {
			continue
		}
		if s.Name == o.Name {
			return s
		}
		kind = append(kind, s)
	}
	if len(kind) == 1 {
		return kind[0]
	}
	return nil
}

func (t *trackingFS) Open(path string) (filesys.File, error) {
	t.note(path)
	return t.FileSystem.Open(path)
}

// isKustomizationFile says whether a file name is one kustomize reads as
// a directory's kustomization.
func isKustomizationFile(name string) bool {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if name == n {
			return true
		}
	}
	return false
}

// kustomizationIn returns the kustomization file of dir, if it has one.
func kustomizationIn(dir string) (string, bool) {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

// isPatchOf says whether the kustomization file kf names file as a patch
// (patches, patchesStrategicMerge, patchesJson6902).
func isPatchOf(kf, file string) bool {
	data, err := os.ReadFile(kf)
	if err != nil {
		return false
	}
	var k struct {
		Patches []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
		StrategicMerge []string `yaml:"patchesStrategicMerge"`
		JSON6902       []struct {
			Path string `yaml:"path"`
		} `yaml:"patchesJson6902"`
	}
	if yaml.Unmarshal(data, &k) != nil {
		return false
	}
	paths := k.StrategicMerge
	for _, p := range k.Patches {
		paths = append(paths, p.Path)
	}
	for _, p := range k.JSON6902 {
		paths = append(paths, p.Path)
	}
	want := absPath(file)
	for _, p := range paths {
		if p != "" && absPath(filepath.Join(filepath.Dir(kf), p)) == want {
			return true
		}
	}
	return false
}
