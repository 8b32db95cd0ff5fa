package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Errors is every problem found in a configuration, one line each.
type Errors []string

func (e Errors) Error() string { return strings.Join(e, "\n") }

// Load reads, parses, fills defaults, applies the environment and validates a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	if st, err := os.Stat(path); err == nil {
		cfg.warnings = append(cfg.warnings, fileWarnings(path, st.Mode(), data)...)
	}
	return cfg, nil
}

// Parse is Load for bytes. An empty document gives the embedded defaults.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	data, cfg.warnings = dropRetiredKeys(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, explainYAML(err, data)
	}
	ApplyEnv(cfg, os.Getenv)
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// Secrets read from the environment when set; they override the file so that a config
// file can be committed without them.
var secretEnv = []struct {
	name, key string
	dst       func(*Config) *string
}{
	{"CRMLINK_HTTP_TOKEN", "http.token", func(c *Config) *string { return &c.HTTP.Token }},
	{"CRMLINK_HTTP_READ_TOKEN", "http.read_token", func(c *Config) *string { return &c.HTTP.ReadToken }},
	{"CRMLINK_REDIS_PASSWORD", "redis.password", func(c *Config) *string { return &c.Redis.Password }},
	{"CRMLINK_ARI_PASSWORD", "asterisk.ari.password", func(c *Config) *string { return &c.Asterisk.ARI.Password }},
	{"CRMLINK_ARI_INBOUND_PASSWORD", "asterisk.ari.inbound.password", func(c *Config) *string { return &c.Asterisk.ARI.Inbound.Password }},
	{"CRMLINK_AMOCRM_TOKEN", "amocrm.token", func(c *Config) *string { return &c.AmoCRM.Token }},
	{"CRMLINK_AMOCRM_CLIENT_SECRET", "amocrm.oauth.client_secret", func(c *Config) *string { return &c.AmoCRM.OAuth.ClientSecret }},
	{"CRMLINK_AMOCRM_WEBHOOK_SECRET", "amocrm.webhook_secret", func(c *Config) *string { return &c.AmoCRM.WebhookSecret }},
	{"CRMLINK_RECORDINGS_SECRET", "recordings.secret", func(c *Config) *string { return &c.Recordings.Secret }},
	{"CRMLINK_CLICK_TO_CALL_KEY_SECRET", "click_to_call.key_secret", func(c *Config) *string { return &c.ClickToCall.KeySecret }},
}

// ApplyEnv copies secrets from the environment into cfg. A chat platform's secrets come
// from CRMLINK_CHAT_<PLATFORM>_API_KEY and CRMLINK_CHAT_<PLATFORM>_WEBHOOK_SECRET, e.g.
// CRMLINK_CHAT_WAZZUP_API_KEY, and ChatApp's from CRMLINK_CHAT_CHATAPP_EMAIL, _PASSWORD and
// _APP_ID.
func ApplyEnv(cfg *Config, getenv func(string) string) {
	for _, s := range secretEnv {
		if v := getenv(s.name); v != "" {
			*s.dst(cfg) = v
		}
	}
	for i := range cfg.Chat.Platforms {
		p := &cfg.Chat.Platforms[i]
		prefix := ChatEnvPrefix(string(p.Platform))
		if v := getenv(prefix + "API_KEY"); v != "" {
			p.APIKey = v
		}
		if v := getenv(prefix + "WEBHOOK_SECRET"); v != "" {
			p.WebhookSecret = v
		}
		// ChatApp's tokens.make credentials (CRMLINK_CHAT_CHATAPP_PASSWORD and the like).
		for suffix, dst := range map[string]*string{"EMAIL": &p.Email, "PASSWORD": &p.Password, "APP_ID": &p.AppID} {
			if v := getenv(prefix + suffix); v != "" {
				*dst = v
			}
		}
	}
}

// ChatEnvPrefix is the prefix of a chat platform's secret variables: CRMLINK_CHAT_WAZZUP_.
func ChatEnvPrefix(platform string) string {
	return "CRMLINK_CHAT_" + strings.ToUpper(platform) + "_"
}

var (
	reUnknown = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\w+\.\w+)`)
	reLine    = regexp.MustCompile(`^yaml: (line \d+:)`)
	// yaml.v3's "line 2: cannot unmarshal !!str `fast` into time.Duration"; the value is
	// cut to 7 characters and absent for a mapping or a list.
	reWrongType = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
)

// retiredKeys are keys earlier versions took that no longer do anything: a file that still
// sets one is accepted with a warning, so an upgrade never stops routing over a key whose
// job moved elsewhere. By dotted path; the text says what took its place.
var retiredKeys = map[string]string{
	"queue.max_attempts": "failing events are now retried for queue.retry_for (default 2h) instead of a number of attempts; remove the key",
}

// dropRetiredKeys blanks the lines of retired keys (keeping the line numbers of every other
// message true) and returns a warning for each.
func dropRetiredKeys(data []byte) ([]byte, []string) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return data, nil // the strict decode reports what is wrong
	}
	var lines [][]byte
	var warnings []string
	for path, instead := range retiredKeys {
		key, value := lookupKey(doc.Content[0], strings.Split(path, "."))
		if key == nil || value.Kind != yaml.ScalarNode || value.Line != key.Line {
			continue
		}
		if lines == nil {
			lines = bytes.Split(data, []byte("\n"))
		}
		lines[key.Line-1] = []byte("#")
		warnings = append(warnings, fmt.Sprintf("line %d: %s is no longer used and is ignored: %s", key.Line, path, instead))
	}
	if lines == nil {
		return data, nil
	}
	sort.Strings(warnings)
	return bytes.Join(lines, []byte("\n")), warnings
}

// lookupKey finds the key and value nodes at path in a mapping.
func lookupKey(n *yaml.Node, path []string) (key, value *yaml.Node) {
	for i, name := range path {
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		found := false
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == name {
				key, value, found = n.Content[j], n.Content[j+1], true
				break
			}
		}
		if !found {
			return nil, nil
		}
		if i < len(path)-1 {
			n = value
		}
	}
	return key, value
}

// explainYAML turns yaml.v3's messages into ones that name the key and what is allowed.
// data is the document, read again to find the key of a value of the wrong type: yaml.v3
// names only its line.
func explainYAML(err error, data []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{reLine.ReplaceAllString(err.Error(), "$1")}
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // it parsed once; a failure only loses the key names
	var out Errors
	for _, msg := range te.Errors {
		if m := reUnknown.FindStringSubmatch(msg); m != nil {
			out = append(out, fmt.Sprintf("line %s: unknown key %q (allowed here: %s)", m[1], m[2], strings.Join(keysOf(m[3]), ", ")))
			continue
		}
		if m := reWrongType.FindStringSubmatch(msg); m != nil {
			out = append(out, wrongType(&doc, m[1], m[2], strings.TrimSuffix(m[3], "..."), m[4]))
			continue
		}
		out = append(out, strings.Replace(msg, "cannot unmarshal", "cannot read", 1))
	}
	return out
}

// wrongType says which key holds a value of the wrong type and what the key takes:
// `routing.lookup_timeout: "fast" is not a duration (e.g. 1500ms, 2s)`.
func wrongType(doc *yaml.Node, line, tag, shortValue, goType string) string {
	n, _ := strconv.Atoi(line)
	kind := map[string]yaml.Kind{"map": yaml.MappingNode, "seq": yaml.SequenceNode}[tag]
	if kind == 0 {
		kind = yaml.ScalarNode
	}
	key, node := findValue(doc, "", valueAt{line: n, kind: kind, prefix: shortValue})
	what := map[string]string{"map": "a mapping", "seq": "a list"}[tag]
	if node != nil && what == "" {
		what = strconv.Quote(node.Value)
	} else if what == "" {
		what = strconv.Quote(shortValue)
	}
	if key == "" {
		key = "line " + line
	}
	return fmt.Sprintf("%s: %s is not %s (line %s)", key, what, allowedFor(goType), line)
}

// allowedFor names what a Go type of the configuration takes, for an administrator, by
// the kind of the type yaml.v3 named ("time.Duration", "crm.UserID", "[]string").
func allowedFor(goType string) string {
	if goType == "time.Duration" {
		return "a duration (e.g. 1500ms, 2s, 6h)"
	}
	t, ok := configTypes()[goType]
	if !ok {
		return "a value of type " + goType
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number (e.g. 1001)"
	case reflect.Float32, reflect.Float64:
		return "a number (e.g. 7 or 2.5)"
	case reflect.String:
		return "a single value (text, not a list or mapping)"
	case reflect.Slice, reflect.Array:
		return "a list (e.g. [a, b] or one \"- item\" per line)"
	default:
		return "a mapping of keys (see docs/configuration.md)"
	}
}

// valueAt is what yaml.v3 tells of a value of the wrong type: its line, its kind and the
// start of its text.
type valueAt struct {
	line   int
	kind   yaml.Kind
	prefix string
}

// findValue finds the value node want describes and returns its key path
// (routing.lookup_timeout, managers[0].endpoints[1]).
func findValue(n *yaml.Node, path string, want valueAt) (string, *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k, v := findValue(c, path, want); v != nil {
				return k, v
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if path != "" {
				key = path + "." + key
			}
			if k, v := findValue(n.Content[i+1], key, want); v != nil {
				return k, v
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if k, v := findValue(c, fmt.Sprintf("%s[%d]", path, i), want); v != nil {
				return k, v
			}
		}
	}
	// After the children: a mapping that starts on the line of its first key is not the
	// value meant when that key's own value is.
	if n.Kind == want.kind && n.Line == want.line && strings.HasPrefix(n.Value, want.prefix) {
		return path, n
	}
	return "", nil
}

// keysOf lists the YAML keys of a config struct by its qualified type name
// ("config.Routing", "scenarios.Missed").
func keysOf(typeName string) []string {
	t, ok := configTypes()[typeName]
	if !ok || t.Kind() != reflect.Struct {
		return nil
	}
	found := yamlKeys(t)
	sort.Strings(found)
	return found
}

// configTypes is every type in the configuration by the name yaml.v3 gives it
// ("config.Routing", "*bool", "[]string", "crm.UserID").
func configTypes() map[string]reflect.Type {
	types := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if _, seen := types[t.String()]; seen {
			return
		}
		types[t.String()] = t
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	return types
}

// yamlKeys lists a struct's YAML keys, those of inlined structs included.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if k := strings.Split(tag, ",")[0]; k != "" && k != "-" {
			out = append(out, k)
		} else if strings.HasSuffix(tag, ",inline") && t.Field(i).Type.Kind() == reflect.Struct {
			out = append(out, yamlKeys(t.Field(i).Type)...)
		}
	}
	return out
}
