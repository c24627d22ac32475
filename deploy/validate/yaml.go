package validate

import (
	"bytes"
	"fmt"
	"os"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ReadYAML reads a YAML file the way CI systems do (YAML 1.2: `on:` is the
// string "on", not the boolean true that YAML 1.1 parsers make of it) and
// returns it as JSON values, ready for a JSON schema.
func ReadYAML(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseYAML(path, data)
}

// ParseYAML is ReadYAML on bytes; name is used in errors.
func ParseYAML(name string, data []byte) (any, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return v, nil
}
