package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Input is what Read found in its paths.
type Input struct {
	Objects []*Object
	// Notes tell what was skipped on purpose (YAML that is not a
	// Kubernetes object, files a kustomization does not use) and which
	// kustomizations were rendered, one line each.
	Notes []Note
}

// Load is Read without the notes.
func Load(paths []string, stdin io.Reader) ([]*Object, error) {
	in, err := Read(paths, stdin)
	return in.Objects, err
}

// Read reads every path: "-" is stdin, a directory is walked recursively
// for *.yaml, *.yml and *.json (skipping hidden directories such as .git),
// anything else is read as a file whatever its name.
//
// A directory holding a kustomization (kustomization.yaml, .yml or
// Kustomization), given or met in the walk, is rendered as `kubectl
// kustomize` does (krusty) and its output read instead of its files; the
// files a kustomization in the tree uses (bases, patches, resources) are
// not read again as loose manifests, and a base used by another
// kustomization of the tree is not rendered on its own. A kustomization
// file given as a path renders its directory.
//
// YAML documents that are not Kubernetes objects are skipped with a Note.
// Objects come back in input order; every unusable file or document is an
// *Error in the joined error, with the objects that could be read still
// returned. A path that yields no Kubernetes object at all (an empty
// directory, empty stdin, a directory of CI pipelines) is an *Error too:
// there is nothing to judge there.
func Read(paths []string, stdin io.Reader) (*Input, error) {
	r := &reader{in: &Input{}}
	for _, p := range paths {
		r.path(p, stdin)
	}
	return r.in, errors.Join(r.errs...)
}

type reader struct {
	in   *Input
	errs []error
}

func (r *reader) fail(file string, msg string) {
	r.errs = append(r.errs, &Error{File: file, Doc: -1, Msg: msg})
}

// parse reads one file's data into the input and returns how many objects
// it held and whether it had errors.
func (r *reader) parse(name string, data []byte) (int, bool) {
	objs, notes, err := ParseNotes(name, data)
	r.in.Objects = append(r.in.Objects, objs...)
	r.in.Notes = append(r.in.Notes, notes...)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return len(objs), err != nil
}

func (r *reader) path(p string, stdin io.Reader) {
	notesBefore := len(r.in.Notes)
	var n int
	var failed bool
	var empty string // why there is nothing to judge, when nothing was found
	switch st, err := os.Stat(p); {
	case p == "-":
		if stdin == nil {
			r.fail("-", "no standard input")
			return
		}
		data, err := io.ReadAll(stdin)
		if err != nil {
			r.fail("-", err.Error())
			return
		}
		if len(bytes.TrimSpace(data)) == 0 {
			r.fail("-", "nothing to judge: standard input is empty (did the command piping into rollsafe fail?)")
			return
		}
		n, failed = r.parse("-", data)
		empty = "standard input holds no Kubernetes object"
	case err != nil:
		r.fail(p, describeOSError(err))
		return
	case !st.IsDir() && isKustomizationFile(filepath.Base(p)):
		n, failed = r.tree(filepath.Dir(p))
		empty = "the kustomization renders no Kubernetes object"
	case !st.IsDir():
		data, err := os.ReadFile(p)
		if err != nil {
			r.fail(p, describeOSError(err))
			return
		}
		if len(bytes.TrimSpace(data)) == 0 {
			r.fail(p, "nothing to judge: the file is empty")
			return
		}
		dir := filepath.Dir(p)
		if kf, ok := kustomizationIn(dir); ok && isPatchOf(kf, p) {
			// A patch is no manifest: its Deployment would be judged
			// without most of its fields.
			r.in.Notes = append(r.in.Notes, Note{File: p, Doc: -1,
				Msg: "skipped: a patch of the kustomization " + dir + ", not a manifest: give " + dir + " to judge what it renders"})
			empty = "no Kubernetes object in the file"
			break
		}
		n, failed = r.parse(p, data)
		empty = "no Kubernetes object in the file"
		if _, ok := kustomizationIn(dir); ok && n > 0 && render(dir).read[absPath(p)] {
			r.in.Notes = append(r.in.Notes, Note{File: p, Doc: -1,
				Msg: "read on its own as given, but the kustomization " + dir + " uses it: give " + dir + " to judge what it renders"})
		}
	default:
		var files int
		n, failed, files = r.walk(p)
		empty = "no Kubernetes object in the directory"
		if files == 0 {
			empty = "no YAML or JSON file in the directory"
		}
	}
	if n == 0 && !failed {
		skipped := 0
		for _, note := range r.in.Notes[notesBefore:] {
			if strings.HasPrefix(note.Msg, "skipped") {
				skipped++
			}
		}
		if skipped > 0 {
			empty += fmt.Sprintf(" (%d skipped, see the notes)", skipped)
		}
		r.fail(p, "nothing to judge: "+empty)
	}
}

// walk reads a directory tree: kustomizations rendered, the files they use
// left out, every other manifest read as it is. It returns the objects
// read, whether anything failed, and how many manifest files it saw.
func (r *reader) walk(root string) (int, bool, int) {
	if _, ok := kustomizationIn(root); ok {
		n, failed := r.tree(root)
		return n, failed, 1
	}
	type entry struct {
		path string
		kust bool // a kustomization directory
	}
	var entries []entry
	var kustDirs []string
	files := 0
	failed := false
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			r.fail(path, describeOSError(err))
			failed = true
			return nil
		}
		if d.IsDir() {
			if path != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if _, ok := kustomizationIn(path); ok {
				entries = append(entries, entry{path, true})
				kustDirs = append(kustDirs, path)
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
		default:
			if !isKustomizationFile(d.Name()) {
				return nil
			}
		}
		files++
		entries = append(entries, entry{path: path})
		return nil
	})
	if err != nil {
		r.fail(root, err.Error())
		failed = true
	}
	if len(kustDirs) == 0 {
		n := 0
		for _, e := range entries {
			got, bad := r.file(e.path)
			n += got
			failed = failed || bad
		}
		return n, failed, files
	}

	// Render every kustomization first: which files (and bases) they use
	// is only known once all of them are built.
	builds := map[string]*build{}
	used := map[string]bool{}
	for _, d := range kustDirs {
		b := render(d)
		builds[d] = b
		own, _ := kustomizationIn(d)
		for f := range b.read {
			if f != absPath(own) {
				used[f] = true // its own kustomization file is no sign of being a base
			}
		}
	}
	n := 0
	for _, e := range entries {
		abs := absPath(e.path)
		switch {
		case e.kust:
			kf, _ := kustomizationIn(e.path)
			if used[absPath(kf)] {
				continue // a base of another kustomization here: rendered with it
			}
			got, bad := r.rendered(e.path, builds[e.path])
			n += got
			failed = failed || bad
		case isKustomizationFile(filepath.Base(e.path)) || used[abs]:
			// The kustomization itself, or a file one of them uses.
		default:
			if owner := owningKustomization(e.path, kustDirs); owner != "" {
				r.in.Notes = append(r.in.Notes, Note{File: e.path, Doc: -1,
					Msg: "skipped: in the kustomization " + owner + " but not used by it"})
				continue
			}
			got, bad := r.file(e.path)
			n += got
			failed = failed || bad
		}
	}
	return n, failed, files
}

// file reads one loose manifest of a walked tree; an empty one is no error.
func (r *reader) file(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		r.fail(path, describeOSError(err))
		return 0, true
	}
	return r.parse(path, data)
}

// tree renders the kustomization in dir.
func (r *reader) tree(dir string) (int, bool) {
	return r.rendered(dir, render(dir))
}

// rendered reads a kustomization's output. Its objects are located in the
// files they came from (locateOrigins); errors in the output, at the
// kustomization file: the rendered stream is no file the user has, so its
// lines would point nowhere.
func (r *reader) rendered(dir string, b *build) (int, bool) {
	kf, _ := kustomizationIn(dir)
	if b.err != nil {
		if dups := duplicateErrors(dir, b); len(dups) > 0 {
			r.errs = append(r.errs, dups...)
			return 0, true
		}
		r.fail(kf, "kustomize: "+strings.Join(strings.Fields(b.err.Error()), " "))
		return 0, true
	}
	objs, notes, err := ParseNotes(kf, b.yaml)
	locateOrigins(dir, objs)
	for _, e := range Errors(err) {
		var me *Error
		if errors.As(e, &me) {
			me.Line = 0
		}
	}
	for i := range notes {
		notes[i].Line = 0
	}
	r.in.Objects = append(r.in.Objects, objs...)
	r.in.Notes = append(r.in.Notes, notes...)
	r.in.Notes = append(r.in.Notes, Note{File: dir, Doc: -1,
		Msg: fmt.Sprintf("kustomization rendered: %d objects", len(objs))})
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return len(objs), err != nil
}

// owningKustomization is the deepest kustomization directory holding path.
func owningKustomization(path string, dirs []string) string {
	owner := ""
	for _, d := range dirs {
		rel, err := filepath.Rel(d, path)
		if err == nil && !strings.HasPrefix(rel, "..") && len(d) > len(owner) {
			owner = d
		}
	}
	return owner
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// describeOSError keeps the reason and drops the path the Error already
// shows, and the system call, which tells a user nothing.
func describeOSError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Errors flattens a joined error from Load or Parse into its parts, one
// per line of output.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}
