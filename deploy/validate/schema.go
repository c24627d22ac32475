package validate

import (
	"fmt"
	"os"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is a compiled JSON schema.
type Schema struct {
	path string
	s    *jsonschema.Schema
}

// LoadSchema compiles the JSON schema at path. The schemas used here are
// draft-07; references stay inside the file, so nothing is fetched.
func LoadSchema(path string) (*Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(offlineLoader{})
	if err := c.AddResource(path, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(path)
	if err != nil {
		return nil, err
	}
	return &Schema{path: path, s: s}, nil
}

// Validate checks a document (as ReadYAML returns it) against the schema.
// The error lists every violation with its location in the document.
func (s *Schema) Validate(doc any) error {
	return s.s.Validate(doc)
}

// ValidateFile reads a YAML file and validates it.
func (s *Schema) ValidateFile(path string) error {
	doc, err := ReadYAML(path)
	if err != nil {
		return err
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%s does not match %s: %v", path, s.path, err)
	}
	return nil
}

// offlineLoader refuses every URL: a schema that needs a remote document
// must fail here, not reach for the network.
type offlineLoader struct{}

func (offlineLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("offline: refusing to fetch %s", url)
}
