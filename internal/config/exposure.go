package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

// validateExposure refuses listeners that would answer strangers. Each rule is an error,
// not a warning, because check-config and serve must agree and each case is a mistake
// with a narrower way to say what was meant:
//   - an HTTP API reachable from other hosts with no token is either useless (every /v1
//     endpoint refuses) or meant to be open, which client data must not be;
//   - a FastAGI or SIP redirect listener on a non-loopback address whose allowlist has
//     only loopback refuses everyone it was opened for;
//   - an allowlist of 0.0.0.0/0 or ::/0 tells anyone whose client a number is; the PBX's
//     network can always be written instead;
//   - the read token equal to the admin token would let a viewer change state;
//   - a phone under two managers rang for whichever came last in the file.
func (c *Config) validateExposure(v *validator) {
	if !loopbackListen(c.HTTP.Listen) && c.HTTP.Token == "" && c.HTTP.ReadToken == "" {
		v.add("http.listen", "is %q, reachable from other hosts, but neither http.token nor http.read_token is set; set them (env CRMLINK_HTTP_TOKEN, CRMLINK_HTTP_READ_TOKEN) or listen on 127.0.0.1", c.HTTP.Listen)
	}
	if c.HTTP.ReadToken != "" && c.HTTP.ReadToken == c.HTTP.Token {
		v.add("http.read_token", "is the same as http.token, so a viewer could change state; give the read token its own value")
	}
	if c.AGI.Enabled {
		v.listenerNetworks("agi", c.AGI.Listen, c.AGI.AllowedNetworks)
	}
	if c.SIP.Enabled {
		v.listenerNetworks("sip_redirect", c.SIP.Listen, c.SIP.AllowedNetworks)
	}
	owner := map[string]string{}
	for i, m := range c.Managers {
		for j, e := range m.Endpoints {
			key := fmt.Sprintf("managers[%d].endpoints[%d]", i, j)
			// Asterisk reads the technology case-insensitively: pjsip/101 is PJSIP/101.
			tech, res, _ := strings.Cut(e, "/")
			id := strings.ToUpper(tech) + "/" + res
			if first, dup := owner[id]; dup {
				v.add(key, "%s is already %s; a phone rings for one manager: list it once", e, first)
				continue
			}
			owner[id] = key
		}
	}
}

// listenerNetworks checks section.allowed_networks against section.listen.
func (v *validator) listenerNetworks(section, listen string, networks []string) {
	key := section + ".allowed_networks"
	remote := false
	for i, n := range networks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			v.add(fmt.Sprintf("%s[%d]", key, i), "is %q; allowed: a network in CIDR form such as 10.0.0.0/8", n)
			continue
		}
		if p.Bits() == 0 {
			v.add(fmt.Sprintf("%s[%d]", key, i), "is %q, which allows every address: anyone could ask whose client a number is; list the PBX's network instead, e.g. 10.0.0.0/24", n)
		}
		remote = remote || !loopbackOnly(p)
	}
	if !loopbackListen(listen) && !remote {
		v.add(section+".listen", "is %q, reachable from other hosts, but %s lists only loopback, so every connection would be refused; list the PBX's network there (e.g. 10.0.0.5/32) or listen on 127.0.0.1", listen, key)
	}
}

// loopbackListen reports whether host:port can only be reached from this host. A host
// name other than localhost may resolve anywhere, so it counts as reachable.
func loopbackListen(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return true // reported by hostPort
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// loopbackOnly reports whether every address of p is a loopback address.
func loopbackOnly(p netip.Prefix) bool {
	a := p.Masked().Addr().Unmap()
	if a.Is4() {
		return a.IsLoopback() && p.Bits()-(p.Addr().BitLen()-32) >= 8
	}
	return a.IsLoopback() && p.Bits() == 128
}

// fileWarnings are the problems of a configuration file that do not stop crmlink: a file
// holding secrets that every local user may read. A warning, not an error, because the
// file may be a container's mounted config map whose mode the admin does not choose; the
// remedy is the environment variables, which is what the warning says.
func fileWarnings(path string, mode fs.FileMode, data []byte) []string {
	if mode.Perm()&0o004 == 0 {
		return nil
	}
	keys, envs := secretsIn(data)
	if len(keys) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s is readable by every user (mode %#o) and holds %s; chmod 600 (or 640 with crmlink's group), or move them to the environment (%s)",
		path, mode.Perm(), strings.Join(keys, ", "), strings.Join(envs, ", "))}
}

// secretsIn lists the secrets written in the file itself (not from the environment) and
// the variables that could hold them instead. The sample ARI password is not a secret:
// serve warns about it on its own.
func secretsIn(data []byte) (keys, envs []string) {
	var c Config
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
		return nil, nil
	}
	for _, s := range secretEnv {
		if val := *s.dst(&c); val != "" && !(s.key == "asterisk.ari.password" && val == DefaultARIPassword) {
			keys, envs = append(keys, s.key), append(envs, s.name)
		}
	}
	for i, p := range c.Chat.Platforms {
		prefix := ChatEnvPrefix(string(p.Platform))
		if p.APIKey != "" {
			keys, envs = append(keys, fmt.Sprintf("chat.platforms[%d].api_key", i)), append(envs, prefix+"API_KEY")
		}
		if p.WebhookSecret != "" {
			keys, envs = append(keys, fmt.Sprintf("chat.platforms[%d].webhook_secret", i)), append(envs, prefix+"WEBHOOK_SECRET")
		}
	}
	return keys, envs
}
