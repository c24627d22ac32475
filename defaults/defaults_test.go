package defaults_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
)

// The module's root, seen from this package's directory.
const root = ".."

// TestTableIsComplete: every exported constant of the package is in Table,
// and every entry of Table names one, so the table docs and tests check
// against is the whole package.
func TestTableIsComplete(t *testing.T) {
	var consts []string
	for _, file := range []string{"defaults.go", "nginx.go"} {
		consts = append(consts, exportedConsts(t, file)...)
	}
	var names []string
	for _, f := range defaults.Table {
		names = append(names, f.Name)
		if f.Source == "" {
			t.Errorf("%s: no source", f.Name)
		}
	}
	for _, c := range consts {
		if !slices.Contains(names, c) {
			t.Errorf("constant %s is not in Table", c)
		}
	}
	for _, n := range names {
		if !slices.Contains(consts, n) {
			t.Errorf("Table entry %s names no constant", n)
		}
	}
}

// exportedConsts lists the exported constants file declares.
func exportedConsts(t *testing.T, file string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, id := range s.(*ast.ValueSpec).Names {
					if id.IsExported() {
						consts = append(consts, id.Name)
					}
				}
			}
		}
	}
	return consts
}

// TestNoSecondDefinition scans the module's Go files (tests and this
// package aside) for a second copy of a fact: a string literal holding one
// of the well-known names, or a constant, variable, field or assignment
// whose name contains a duration fact's name and whose value is that fact's
// value written out again (DeregistrationDelay: 300 * time.Second). A copy
// drifts; the constant in package defaults does not.
func TestNoSecondDefinition(t *testing.T) {
	files := goFiles(t)
	if len(files) < 50 {
		t.Fatalf("only %d Go files found under %s: the scan would prove nothing", len(files), root)
	}
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				literalCopy(t, fset, lit)
			}
			for name, value := range definitions(n) {
				durationCopy(t, fset, name, value, timeName(f))
			}
			return true
		})
	}
}

// goFiles lists the module's non-test Go files outside this package and
// outside nested modules (they have their own go.mod).
func goFiles(t *testing.T) []string {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == filepath.Join(root, "defaults") || name == "testdata" || path != root && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// literalCopy reports a string literal holding a well-known name. Names
// shorter than 8 characters ("/", "alb") are too common to scan for.
func literalCopy(t *testing.T, fset *token.FileSet, lit *ast.BasicLit) {
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return
	}
	for _, f := range defaults.Table {
		if f.IsName() && len(f.Value) >= 8 && strings.Contains(s, f.Value) {
			t.Errorf("%s: literal %q repeats defaults.%s; use the constant", fset.Position(lit.Pos()), s, f.Name)
		}
	}
}

// definitions returns the names n gives values to: constants and
// variables, struct literal fields, and assignments.
func definitions(n ast.Node) map[string]ast.Expr {
	out := map[string]ast.Expr{}
	switch x := n.(type) {
	case *ast.ValueSpec:
		for i, id := range x.Names {
			if i < len(x.Values) {
				out[id.Name] = x.Values[i]
			}
		}
	case *ast.KeyValueExpr:
		if id, ok := x.Key.(*ast.Ident); ok {
			out[id.Name] = x.Value
		}
	case *ast.AssignStmt:
		if len(x.Lhs) != len(x.Rhs) {
			break
		}
		for i, l := range x.Lhs {
			switch l := l.(type) {
			case *ast.Ident:
				out[l.Name] = x.Rhs[i]
			case *ast.SelectorExpr:
				out[l.Sel.Name] = x.Rhs[i]
			}
		}
	}
	return out
}

// durationCopy reports name = value when value writes out a duration
// fact's value and name contains that fact's name.
func durationCopy(t *testing.T, fset *token.FileSet, name string, value ast.Expr, timePkg string) {
	d, ok := literalDuration(value, timePkg)
	if !ok {
		return
	}
	for _, f := range defaults.Table {
		v, isNum := f.Number()
		if !isNum || !strings.HasSuffix(f.Value, " s") || !strings.Contains(strings.ToLower(name), strings.ToLower(f.Name)) {
			continue
		}
		if d.Seconds() == v {
			t.Errorf("%s: %s = %v re-defines defaults.%s; use the constant", fset.Position(value.Pos()), name, d, f.Name)
		}
	}
}

// literalDuration evaluates N * time.Unit written with literals only.
func literalDuration(e ast.Expr, timePkg string) (time.Duration, bool) {
	switch x := e.(type) {
	case *ast.ParenExpr:
		return literalDuration(x.X, timePkg)
	case *ast.BinaryExpr:
		if x.Op != token.MUL {
			return 0, false
		}
		if n, ok := number(x.X); ok {
			if u, ok := unit(x.Y, timePkg); ok {
				return time.Duration(n * float64(u)), true
			}
		}
		if n, ok := number(x.Y); ok {
			if u, ok := unit(x.X, timePkg); ok {
				return time.Duration(n * float64(u)), true
			}
		}
	}
	return 0, false
}

func number(e ast.Expr) (float64, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || (lit.Kind != token.INT && lit.Kind != token.FLOAT) {
		return 0, false
	}
	v, err := strconv.ParseFloat(lit.Value, 64)
	return v, err == nil
}

func unit(e ast.Expr, timePkg string) (time.Duration, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return 0, false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != timePkg {
		return 0, false
	}
	u, ok := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second,
		"Minute": time.Minute, "Hour": time.Hour}[sel.Sel.Name]
	return u, ok
}

// timeName is the name file f imports package time under ("" when it does not).
func timeName(f *ast.File) string {
	for _, imp := range f.Imports {
		if imp.Path.Value == `"time"` {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return "time"
		}
	}
	return ""
}
