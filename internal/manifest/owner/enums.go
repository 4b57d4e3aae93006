package owner

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// goEnums adds the string constants a Go file of package pkgPath declares
// to enums, by their type ("pkgPath.Type"): Strimzi's enums (StorageType,
// KafkaListenerType, …) as strimzi-go writes them from Strimzi's CRDs,
// Grafana's (ThresholdsMode, BigValueColorMode, …) as grafana-foundation-sdk
// writes them. Go cannot list a type's constants at run time, so the file
// is parsed.
func goEnums(enums map[string][]string, file, pkgPath string) error {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		return err
	}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			typ, ok := vs.Type.(*ast.Ident)
			if !ok {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					enums[pkgPath+"."+typ.Name] = append(enums[pkgPath+"."+typ.Name], s)
				}
			}
		}
	}
	return nil
}

// checkEnums walks a decoded object and checks each field of an enum type
// against its constants.
func (c *Checker) checkEnums(obj any) field.ErrorList {
	var errs field.ErrorList
	var walk func(v reflect.Value, path *field.Path)
	walk = func(v reflect.Value, path *field.Path) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				child := path
				if name != "" && name != "-" {
					child = path.Child(name)
				}
				walk(v.Field(i), child)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), path.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(v.MapIndex(k), path.Key(k.String()))
			}
		case reflect.String:
			allowed, ok := c.enums[v.Type().PkgPath()+"."+v.Type().Name()]
			if ok && v.String() != "" && !slices.Contains(allowed, v.String()) {
				errs = append(errs, field.NotSupported(path, v.String(), allowed))
			}
		}
	}
	walk(reflect.ValueOf(obj), nil)
	return errs
}
