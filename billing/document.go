package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// DocumentJSON returns a tariff or masters document as JSON. A document
// that is JSON already (it starts with '{' or '[') is returned unchanged;
// anything else is read as YAML and converted, number literals kept
// exactly as written (1.10 stays 1.10, never a binary float), so the
// validators see the same document either way and report the same field
// paths. A document that is neither fails with a *ValidationError naming
// the YAML line.
func DocumentJSON(data []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return data, nil
	}
	var root, next yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		ve := &ValidationError{Subject: "document"}
		ve.Add("document", "is empty")
		return nil, ve
	case err != nil:
		ve := &ValidationError{Subject: "document"}
		ve.Add("document", "is neither JSON nor YAML: "+err.Error())
		return nil, ve
	case !errors.Is(dec.Decode(&next), io.EOF):
		ve := &ValidationError{Subject: "document"}
		ve.Add("document", "holds more than one YAML document (---): publish one at a time")
		return nil, ve
	}
	var b bytes.Buffer
	if err := appendYAMLNode(&b, &root, 0); err != nil {
		ve := &ValidationError{Subject: "document"}
		ve.Add("document", err.Error())
		return nil, ve
	}
	return b.Bytes(), nil
}

// maxAliasDepth bounds alias expansion (a document of nested aliases can
// otherwise grow exponentially).
const maxAliasDepth = 16

func appendYAMLNode(b *bytes.Buffer, n *yaml.Node, depth int) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one YAML document", n.Line)
		}
		return appendYAMLNode(b, n.Content[0], depth)
	case yaml.AliasNode:
		if depth >= maxAliasDepth {
			return fmt.Errorf("line %d: aliases nested too deep", n.Line)
		}
		return appendYAMLNode(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("line %d: keys must be plain names (no merge keys)", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: key %q repeated", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			b.Write(key)
			b.WriteByte(':')
			if err := appendYAMLNode(b, v, depth); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendYAMLNode(b, c, depth); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		return appendYAMLScalar(b, n)
	default:
		return fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	return nil
}

func appendYAMLScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		v, err := strconv.ParseBool(n.Value)
		if err != nil { // YAML 1.1 spellings (yes, on) are strings in v3; this is the 1.2 set
			return fmt.Errorf("line %d: %q is not a boolean", n.Line, n.Value)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int", "!!float":
		// JSON's number grammar, or it stays text for the validator to
		// refuse by name (0x10, .inf and 1_000 are YAML, not JSON).
		if !isJSONNumber(n.Value) {
			return fmt.Errorf("line %d: number %q: write it in decimal (such as 1000 or 4.35)", n.Line, n.Value)
		}
		b.WriteString(n.Value)
	default: // !!str, !!timestamp (dates stay text, as in JSON documents) and others
		s, _ := json.Marshal(n.Value)
		b.Write(s)
	}
	return nil
}

func isJSONNumber(s string) bool {
	var v any
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return false
	}
	_, ok := v.(json.Number)
	return ok && !d.More()
}
