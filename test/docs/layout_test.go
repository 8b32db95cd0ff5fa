package docs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// goFiles lists the repository's Go source files (not tests) by package directory.
func goFiles(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			pkgs[filepath.ToSlash(rel)] = append(pkgs[filepath.ToSlash(rel)], p)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, pkgs)
	return pkgs
}

// mapEntries are the paths the first column of the package tables (a table whose header is
// "| package | one job |") names in backticks, with `a/{b,c}` standing for a/b and a/c.
func mapEntries(md string) []string {
	row := regexp.MustCompile("^\\| `([^`]+)`")
	var out []string
	inTable := false
	for _, l := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(l, "| package | one job |"):
			inTable = true
			continue
		case !strings.HasPrefix(l, "|"):
			inTable = false
		}
		m := row.FindStringSubmatch(l)
		if !inTable || m == nil {
			continue
		}
		e := m[1]
		open, close := strings.IndexByte(e, '{'), strings.IndexByte(e, '}')
		if open < 0 || close < open {
			out = append(out, e)
			continue
		}
		for _, alt := range strings.Split(e[open+1:close], ",") {
			out = append(out, e[:open]+alt+e[close+1:])
		}
	}
	return out
}

// The README's package map and docs/architecture.md's package table are the code's map: every
// package there exists, and every package of the code is there.
func TestPackageMapsMatchTheCode(t *testing.T) {
	pkgs := goFiles(t)
	for _, doc := range []string{"README.md", "docs/architecture.md"} {
		t.Run(doc, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, doc))
			require.NoError(t, err)
			entries := mapEntries(string(data))
			require.Greater(t, len(entries), 20, "a package table")
			for _, e := range entries {
				info, err := os.Stat(filepath.Join(root, e))
				assert.True(t, err == nil && info.IsDir(), "%s names %s, which is not a directory of the repository", doc, e)
			}
			for p := range pkgs {
				assert.Contains(t, entries, p, "package %s is missing from %s's package table", p, doc)
			}
		})
	}
}

// Every HTTP handler crmlink serves lives in internal/httpapi; domain packages offer plain Go
// interfaces. The vendors' emulators (sandbox packages) and the benchmark's harness (bench and
// its commands: the Stasis floor's stand-in for crmlink) are HTTP servers of their own, not
// crmlink's.
func TestHTTPHandlersLiveInHTTPAPI(t *testing.T) {
	for pkg, files := range goFiles(t) {
		if pkg == "internal/httpapi" || pkg == "bench" || strings.HasPrefix(pkg, "bench/") || slices.Contains(strings.Split(pkg, "/"), "sandbox") {
			continue
		}
		for _, file := range files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
			require.NoError(t, err)
			ast.Inspect(f, func(n ast.Node) bool {
				var ft *ast.FuncType
				name := "a function literal"
				switch fn := n.(type) {
				case *ast.FuncDecl:
					ft, name = fn.Type, fn.Name.Name
					assert.NotEqual(t, "ServeHTTP", fn.Name.Name, "%s: an http.Handler outside internal/httpapi", file)
				case *ast.FuncLit:
					ft = fn.Type
				default:
					return true
				}
				for _, fl := range []*ast.FieldList{ft.Params, ft.Results} {
					for _, field := range fieldTypes(fl) {
						assert.NotContains(t, []string{"http.Handler", "http.HandlerFunc", "http.ResponseWriter"}, field,
							"%s: %s takes or returns %s; HTTP handlers belong in internal/httpapi", file, name, field)
					}
				}
				return true
			})
		}
	}
}

func fieldTypes(fl *ast.FieldList) []string {
	if fl == nil {
		return nil
	}
	var out []string
	for _, f := range fl.List {
		if se, ok := f.Type.(*ast.SelectorExpr); ok {
			if x, ok := se.X.(*ast.Ident); ok {
				out = append(out, x.Name+"."+se.Sel.Name)
			}
		}
	}
	return out
}

// stringConsts returns the string constants of a Go file whose name starts with prefix
// (Var, Header) or whose declared type is typ (Reason).
func stringConsts(t *testing.T, file, prefix, typ string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			typed := false
			if id, ok := vs.Type.(*ast.Ident); ok && typ != "" && id.Name == typ {
				typed = true
			}
			for i, n := range vs.Names {
				if i >= len(vs.Values) || !(typed || prefix != "" && strings.HasPrefix(n.Name, prefix)) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					if v != "" {
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out
}

// The dialplan contract as the code defines it (pbx/dialplan's names, routing's fallback
// reasons) is what the README and docs/architecture.md tell the administrator.
func TestDialplanContractIsDocumented(t *testing.T) {
	names := stringConsts(t, "pbx/dialplan/dialplan.go", "Var", "")
	for k, v := range stringConsts(t, "pbx/dialplan/dialplan.go", "Header", "") {
		names[k] = v
	}
	require.Len(t, names, 11, "seven channel variables (with the CDR userfield) and four SIP headers")
	reasons := stringConsts(t, "routing/decision.go", "", "Reason")
	require.GreaterOrEqual(t, len(reasons), 8)
	for _, doc := range []string{"README.md", "docs/architecture.md"} {
		data, err := os.ReadFile(filepath.Join(root, doc))
		require.NoError(t, err)
		for k, v := range names {
			assert.Contains(t, string(data), v, "%s does not name %s (%s)", doc, v, k)
		}
		for k, v := range reasons {
			assert.Regexp(t, `(?m)^\s*`+regexp.QuoteMeta(v)+`\s`, string(data), "%s does not explain the reason %s (%s) at the start of a line", doc, v, k)
		}
	}
}

// The files "Tracing a call" walks through exist: a renamed or moved file shows here first.
func TestArchitectureNamesFilesThatExist(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "docs/architecture.md"))
	require.NoError(t, err)
	files := regexp.MustCompile("`([a-z0-9_/.-]+/[a-z0-9_.-]+\\.go)`").FindAllStringSubmatch(string(data), -1)
	require.GreaterOrEqual(t, len(files), 20, "the two traces name their files")
	for _, m := range files {
		_, err := os.Stat(filepath.Join(root, m[1]))
		assert.NoError(t, err, "docs/architecture.md names %s", m[1])
	}
}

// Each trace in "Tracing a call" takes at most 6 files: its numbered steps each start with
// the one file the call or event passes through, and no trace lists more than 6 of them.
func TestTracesTakeAtMostSixFiles(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "docs/architecture.md"))
	require.NoError(t, err)
	doc := string(data)
	start := strings.Index(doc, "\n## Tracing a call\n")
	require.GreaterOrEqual(t, start, 0, "docs/architecture.md has a Tracing a call section")
	section := doc[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	traces := regexp.MustCompile(`(?m)^\*\*(.+?)\*\*`).FindAllStringSubmatchIndex(section, -1)
	require.Len(t, traces, 2, "the call to its note, and the amoCRM webhook to the chat write")
	step := regexp.MustCompile("(?m)^(\\d+)\\. `([a-z0-9_/.-]+\\.go)`")
	for i, tr := range traces {
		name := section[tr[2]:tr[3]]
		body := section[tr[1]:]
		if i+1 < len(traces) {
			body = section[tr[1]:traces[i+1][0]]
		}
		steps := step.FindAllStringSubmatch(body, -1)
		numbered := regexp.MustCompile(`(?m)^\d+\. `).FindAllString(body, -1)
		assert.Len(t, steps, len(numbered), "%s: every numbered step starts with its file", name)
		files := map[string]bool{}
		for n, s := range steps {
			assert.Equal(t, strconv.Itoa(n+1), s[1], "%s: steps numbered in order", name)
			files[s[2]] = true
		}
		assert.NotEmpty(t, files, name)
		assert.LessOrEqual(t, len(files), 6, "%s takes %d files: %v", name, len(files), files)
		heading, _, _ := strings.Cut(body, "\n")
		assert.Contains(t, heading, fmt.Sprintf("(%d files)", len(files)), "%s: the heading says how many", name)
	}
}
