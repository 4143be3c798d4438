package caddychannels

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The rule table of ARCHITECTURE.md names a file and a function per
// protocol rule: each must still exist, so that the map cannot rot.
func TestArchitectureMapIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\|[^|]+\\| `([^`]+\\.go)` \\| `([^`]+)` \\|$")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 12 {
		t.Fatalf("%d file/function rows in ARCHITECTURE.md, want at least 12", len(rows))
	}
	for _, r := range rows {
		file, fn := r[1], r[2]
		decls, err := funcDecls(file)
		if err != nil {
			t.Errorf("ARCHITECTURE.md names %s: %v", file, err)
			continue
		}
		if !decls[fn] {
			t.Errorf("ARCHITECTURE.md names %s in %s, which declares no such function", fn, file)
		}
	}
	// Every file named anywhere in the map exists.
	named := regexp.MustCompile("`((?:channels|webhook|pubsub|internal|cmd|caddytest)/[^`* ]+\\.go)`")
	for _, m := range named.FindAllStringSubmatch(string(doc), -1) {
		if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("ARCHITECTURE.md names %s: %v", m[1], err)
		}
	}
}

// funcDecls returns the functions file declares, named as the map names
// them: "name" for a function, "(*T).name" or "(T).name" for a method.
func funcDecls(file string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if fd.Recv == nil || len(fd.Recv.List) == 0 {
			out[fd.Name.Name] = true
			continue
		}
		recv := fd.Recv.List[0].Type
		prefix := "("
		if star, ok := recv.(*ast.StarExpr); ok {
			prefix, recv = "(*", star.X
		}
		if idx, ok := recv.(*ast.IndexExpr); ok { // generic receiver
			recv = idx.X
		}
		if id, ok := recv.(*ast.Ident); ok {
			out[prefix+strings.TrimSpace(id.Name)+")."+fd.Name.Name] = true
		}
	}
	return out, nil
}
