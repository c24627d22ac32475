package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads every path: "-" is stdin, a directory is walked recursively
// for *.yaml, *.yml and *.json (skipping hidden directories such as .git),
// anything else is read as a file whatever its name. Objects come back in
// input order; every unusable file or document is an *Error in the joined
// error, with the objects that could be read still returned.
func Load(paths []string, stdin io.Reader) ([]*Object, error) {
	var objs []*Object
	var errs []error
	add := func(name string, data []byte) {
		got, err := Parse(name, data)
		objs = append(objs, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range paths {
		if p == "-" {
			if stdin == nil {
				errs = append(errs, &Error{File: "-", Msg: "no standard input"})
				continue
			}
			data, err := io.ReadAll(stdin)
			if err != nil {
				errs = append(errs, &Error{File: "-", Msg: err.Error()})
				continue
			}
			add("-", data)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: describeOSError(err)})
			continue
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, &Error{File: p, Msg: describeOSError(err)})
				continue
			}
			add(p, data)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &Error{File: path, Msg: describeOSError(err)})
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
			default:
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, &Error{File: path, Msg: describeOSError(err)})
				return nil
			}
			add(path, data)
			return nil
		})
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
		}
	}
	return objs, errors.Join(errs...)
}

// describeOSError keeps the reason and drops the path the Error already shows.
func describeOSError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %v", pe.Op, pe.Err)
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
