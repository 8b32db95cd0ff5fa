// Package docs holds crmlink's guides (Markdown); this test keeps the configuration
// reference honest: every key of examples/crmlink.yaml, and every key crmlink's
// configuration accepts, has its row in docs/configuration.md, and the reference names no
// key that does not exist.
package docs

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmlink/crmlink/internal/config"
)

// exampleKeys lists the dotted keys of a YAML document's values (not its sections); keys
// inside list items are written with [] ("managers[].schedule.timezone").
func exampleKeys(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if prefix != "" {
					key = prefix + "." + key
				}
				if v := n.Content[i+1]; !isSection(v) {
					out = append(out, key)
				}
				walk(n.Content[i+1], key)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix+"[]")
			}
		}
	}
	walk(&doc, "")
	return uniq(out)
}

// isSection tells a mapping, or a list of mappings, from a value: sections are documented
// by their keys.
func isSection(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode || (n.Kind == yaml.SequenceNode && len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode)
}

// configKeys lists the dotted keys of values crmlink's configuration types accept.
func configKeys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			walk(t.Elem(), prefix+"[]")
			return
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			tag := t.Field(i).Tag.Get("yaml")
			name := strings.Split(tag, ",")[0]
			if name == "" && strings.HasSuffix(tag, ",inline") {
				walk(t.Field(i).Type, prefix)
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			if prefix != "" {
				name = prefix + "." + name
			}
			ft := t.Field(i).Type
			if ft.Kind() != reflect.Struct {
				// A list of sections is a key too: an example may show it empty.
				out = append(out, name)
			}
			walk(ft, name)
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	return uniq(out)
}

// documentedKeys are the keys in the first column of the reference's tables: `key`.
func documentedKeys(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `([a-z_.\\[\\]]+)` \\|")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	return uniq(out)
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func missing(want, have []string) []string {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	var out []string
	for _, w := range want {
		if !set[w] {
			out = append(out, w)
		}
	}
	return out
}

func TestConfigurationReferenceCoversTheExample(t *testing.T) {
	documented := documentedKeys(t, "configuration.md")
	if len(documented) == 0 {
		t.Fatal("docs/configuration.md has no key rows (| `key` | ...)")
	}
	example := exampleKeys(t, "../examples/crmlink.yaml")
	accepted := configKeys()
	if m := missing(example, documented); len(m) > 0 {
		t.Errorf("keys of examples/crmlink.yaml missing from docs/configuration.md:\n  %s", strings.Join(m, "\n  "))
	}
	if m := missing(accepted, documented); len(m) > 0 {
		t.Errorf("keys crmlink accepts (internal/config) missing from docs/configuration.md:\n  %s", strings.Join(m, "\n  "))
	}
	if m := missing(documented, accepted); len(m) > 0 {
		t.Errorf("docs/configuration.md documents keys crmlink does not accept:\n  %s", strings.Join(m, "\n  "))
	}
	if m := missing(accepted, example); len(m) > 0 {
		t.Logf("keys crmlink accepts that examples/crmlink.yaml does not show (fine, but worth a line there):\n  %s", strings.Join(m, "\n  "))
	}
}
