package validate

import (
	"fmt"
	"strings"
	"unicode"
)

// GroovyNode is one directive of a declarative Jenkinsfile: a block such as
// `stage('Test') { ... }` or a one-line statement such as `agent any`.
type GroovyNode struct {
	Name     string // stage
	Arg      string // 'Test', without quotes
	Line     int
	Block    bool
	Children []*GroovyNode
}

// Child returns the first child directive called name.
func (n *GroovyNode) Child(name string) *GroovyNode {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ParseDeclarative reads the directive structure of a declarative pipeline:
// which blocks nest in which, with their arguments. It is not a Groovy
// parser (npm-groovy-lint is the syntax check); it skips comments and
// strings and follows braces, which is all the structure checks need.
func ParseDeclarative(src string) (*GroovyNode, error) {
	p := &groovyScanner{src: src, line: 1}
	root := &GroovyNode{Name: "<file>", Block: true}
	if err := p.block(root, false); err != nil {
		return nil, err
	}
	return root, nil
}

type groovyScanner struct {
	src  string
	pos  int
	line int
}

func (p *groovyScanner) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *groovyScanner) advance() {
	if p.src[p.pos] == '\n' {
		p.line++
	}
	p.pos++
}

// skipSpace skips blanks, newlines and comments.
func (p *groovyScanner) skipSpace() error {
	for p.pos < len(p.src) {
		switch {
		case strings.HasPrefix(p.src[p.pos:], "//"):
			for p.pos < len(p.src) && p.peek() != '\n' {
				p.advance()
			}
		case strings.HasPrefix(p.src[p.pos:], "/*"):
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				return fmt.Errorf("line %d: unterminated comment", p.line)
			}
			for stop := p.pos + 2 + end + 2; p.pos < stop; {
				p.advance()
			}
		case unicode.IsSpace(rune(p.peek())) || p.peek() == ';':
			p.advance()
		default:
			return nil
		}
	}
	return nil
}

// skipString skips a string literal in single, double, triple-single or
// triple-double quotes and returns its contents.
func (p *groovyScanner) skipString() (string, error) {
	start := p.line
	q := string(p.peek())
	if strings.HasPrefix(p.src[p.pos:], q+q+q) {
		q = q + q + q
	}
	for range len(q) {
		p.advance()
	}
	from := p.pos
	for p.pos < len(p.src) {
		if p.peek() == '\\' && len(q) == 1 {
			p.advance()
			if p.pos < len(p.src) {
				p.advance()
			}
			continue
		}
		if strings.HasPrefix(p.src[p.pos:], q) {
			s := p.src[from:p.pos]
			for range len(q) {
				p.advance()
			}
			return s, nil
		}
		p.advance()
	}
	return "", fmt.Errorf("line %d: unterminated string", start)
}

// skipParens skips a balanced (...) and returns the first string in it.
func (p *groovyScanner) skipParens() (string, error) {
	start, depth, first := p.line, 0, ""
	for p.pos < len(p.src) {
		switch c := p.peek(); {
		case c == '\'' || c == '"':
			s, err := p.skipString()
			if err != nil {
				return "", err
			}
			if first == "" {
				first = s
			}
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				p.advance()
				return first, nil
			}
		}
		p.advance()
	}
	return "", fmt.Errorf("line %d: unbalanced parenthesis", start)
}

// restOfStatement skips to the end of a one-line statement (strings,
// parentheses and brackets may span lines).
func (p *groovyScanner) restOfStatement() error {
	for p.pos < len(p.src) {
		switch c := p.peek(); {
		case c == '\n' || c == '}':
			return nil
		case c == '\'' || c == '"':
			if _, err := p.skipString(); err != nil {
				return err
			}
		case c == '(':
			if _, err := p.skipParens(); err != nil {
				return err
			}
		case c == '[' || c == '{':
			// a map/list/closure argument: skip it balanced
			if err := p.skipBalanced(c); err != nil {
				return err
			}
		default:
			p.advance()
		}
	}
	return nil
}

func (p *groovyScanner) skipBalanced(open byte) error {
	close := map[byte]byte{'[': ']', '{': '}'}[open]
	start, depth := p.line, 0
	for p.pos < len(p.src) {
		switch c := p.peek(); {
		case c == '\'' || c == '"':
			if _, err := p.skipString(); err != nil {
				return err
			}
			continue
		case c == open:
			depth++
		case c == close:
			depth--
			if depth == 0 {
				p.advance()
				return nil
			}
		}
		p.advance()
	}
	return fmt.Errorf("line %d: unbalanced %c", start, open)
}

func (p *groovyScanner) ident() string {
	from := p.pos
	for p.pos < len(p.src) {
		c := rune(p.peek())
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || c == '.') {
			break
		}
		p.advance()
	}
	return p.src[from:p.pos]
}

// block reads directives until the closing brace (or the end of the file
// for the root).
func (p *groovyScanner) block(parent *GroovyNode, braced bool) error {
	for {
		if err := p.skipSpace(); err != nil {
			return err
		}
		if p.pos >= len(p.src) {
			if braced {
				return fmt.Errorf("line %d: block %q is never closed", parent.Line, parent.Name)
			}
			return nil
		}
		if p.peek() == '}' {
			if !braced {
				return fmt.Errorf("line %d: unexpected }", p.line)
			}
			p.advance()
			return nil
		}
		n := &GroovyNode{Line: p.line, Name: p.ident()}
		if n.Name == "" { // an expression statement: skip it
			if err := p.restOfStatement(); err != nil {
				return err
			}
			if p.peek() == '}' || p.pos >= len(p.src) {
				continue
			}
			p.advance()
			continue
		}
		parent.Children = append(parent.Children, n)
		for p.pos < len(p.src) && (p.peek() == ' ' || p.peek() == '\t') {
			p.advance()
		}
		if p.peek() == '(' {
			arg, err := p.skipParens()
			if err != nil {
				return err
			}
			n.Arg = arg
			for p.pos < len(p.src) && (p.peek() == ' ' || p.peek() == '\t') {
				p.advance()
			}
		}
		if p.peek() == '{' {
			p.advance()
			n.Block = true
			if err := p.block(n, true); err != nil {
				return err
			}
			continue
		}
		if err := p.restOfStatement(); err != nil {
			return err
		}
	}
}

// CheckDeclarative checks the shape Jenkins requires of a declarative
// pipeline, and the stages the kit promises, in order. It returns every
// problem found.
func CheckDeclarative(root *GroovyNode, wantStages []string) []string {
	var probs []string
	pl := root.Child("pipeline")
	if pl == nil || !pl.Block {
		return []string{"no top-level pipeline { } block"}
	}
	if a := pl.Child("agent"); a == nil {
		probs = append(probs, "pipeline has no agent")
	}
	stages := pl.Child("stages")
	if stages == nil || !stages.Block {
		return append(probs, "pipeline has no stages { } block")
	}
	var names []string
	for _, s := range stages.Children {
		if s.Name != "stage" {
			probs = append(probs, fmt.Sprintf("line %d: %q inside stages: only stage('…') { } is allowed", s.Line, s.Name))
			continue
		}
		if s.Arg == "" {
			probs = append(probs, fmt.Sprintf("line %d: stage without a name", s.Line))
		}
		if s.Child("steps") == nil && s.Child("parallel") == nil && s.Child("stages") == nil && s.Child("matrix") == nil {
			probs = append(probs, fmt.Sprintf("line %d: stage %q has no steps, parallel, matrix or stages", s.Line, s.Arg))
		}
		names = append(names, s.Arg)
	}
	i := 0
	for _, n := range names {
		if i < len(wantStages) && n == wantStages[i] {
			i++
		}
	}
	if i < len(wantStages) {
		probs = append(probs, fmt.Sprintf("stages %q: want %q in this order (missing or out of order: %q)", names, wantStages, wantStages[i]))
	}
	if post := pl.Child("post"); post == nil {
		probs = append(probs, "pipeline has no post block (probe record and failure notice)")
	} else if post.Child("always") == nil {
		probs = append(probs, "post block has no always { } (the probe record must be kept on failure too)")
	}
	return probs
}
