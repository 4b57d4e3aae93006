package owner

import (
	"maps"
	"slices"
	"sort"
	"strconv"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
)

// SchemaFields finds, in an object of a kind that has a CRD, a field the
// CRD's schema gives an enum and a field it marks required, both present
// in the object, as paths of keys and indexes — what a test changes to see
// that the schema, not a rule of clima's, refuses the object.
//
// present says the required field is in the object; otherwise required
// lies under an object the schema has and the manifest does not, which a
// test adds empty.
func (c *Checker) SchemaFields(gvk string, obj map[string]any) (enum, required []string, present bool) {
	s, ok := c.crds[gvk]
	if !ok {
		return nil, nil, false
	}
	enum = findEnum(s.internal, obj, nil)
	if enum == nil {
		// No field of the object has an enum: take one the schema has.
		enum = anyEnum(s.internal, nil)
	}
	required = findRequired(s.internal, obj, nil)
	present = required != nil
	if required == nil {
		// No required field in the object: an object the schema has, given
		// empty, misses its required fields.
		required = anyRequired(s.internal, nil)
	}
	return enum, required, present
}

// anyRequired is the first required field under objects only.
func anyRequired(s *apiextensions.JSONSchemaProps, path []string) []string {
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		child := s.Properties[k]
		if k == "status" || k == "metadata" && len(path) == 0 || child.Type != "object" {
			continue
		}
		p := append(append([]string{}, path...), k)
		if len(child.Required) > 0 {
			required := append([]string{}, child.Required...)
			sort.Strings(required)
			return append(p, required[0])
		}
		if r := anyRequired(&child, p); r != nil {
			return r
		}
	}
	return nil
}

// anyEnum is the first field with an enum that objects lead to.
func anyEnum(s *apiextensions.JSONSchemaProps, path []string) []string {
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		child := s.Properties[k]
		if k == "status" || k == "metadata" && len(path) == 0 {
			continue
		}
		p := append(append([]string{}, path...), k)
		if len(child.Enum) > 0 && child.Type == "string" {
			return p
		}
		if child.Type == "object" {
			if e := anyEnum(&child, p); e != nil {
				return e
			}
		}
	}
	return nil
}

func childSchema(s *apiextensions.JSONSchemaProps, key string) *apiextensions.JSONSchemaProps {
	if p, ok := s.Properties[key]; ok {
		return &p
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		return s.AdditionalProperties.Schema
	}
	return nil
}

func findEnum(s *apiextensions.JSONSchemaProps, obj any, path []string) []string {
	switch o := obj.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(o)) {
			child := childSchema(s, k)
			if child == nil || k == "metadata" && len(path) == 0 {
				continue
			}
			if _, isString := o[k].(string); isString && len(child.Enum) > 0 {
				return append(append([]string{}, path...), k)
			}
			if p := findEnum(child, o[k], append(append([]string{}, path...), k)); p != nil {
				return p
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for i, e := range o {
				if p := findEnum(s.Items.Schema, e, append(append([]string{}, path...), strconv.Itoa(i))); p != nil {
					return p
				}
			}
		}
	}
	return nil
}

// findRequired prefers the deepest required field, so that removing it
// leaves the rest of the object whole.
func findRequired(s *apiextensions.JSONSchemaProps, obj any, path []string) []string {
	switch o := obj.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(o)) {
			if child := childSchema(s, k); child != nil && !(k == "metadata" && len(path) == 0) {
				if p := findRequired(child, o[k], append(append([]string{}, path...), k)); p != nil {
					return p
				}
			}
		}
		required := append([]string{}, s.Required...)
		sort.Strings(required)
		for _, r := range required {
			if _, present := o[r]; present && !(len(path) == 0 && (r == "apiVersion" || r == "kind" || r == "metadata")) {
				return append(append([]string{}, path...), r)
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for i, e := range o {
				if p := findRequired(s.Items.Schema, e, append(append([]string{}, path...), strconv.Itoa(i))); p != nil {
					return p
				}
			}
		}
	}
	return nil
}
