package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
)

// Validate checks each option on its own (Verify checks how options go
// together). It does no I/O. The first problem found is returned, with
// dockerd's wording where dockerd has one.
func (c *Config) Validate() error {
	if !validLogLevel(c.LogLevel) {
		return fmt.Errorf("invalid logging level: %s", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("invalid log format: %s", c.LogFormat)
	}
	for _, p := range []struct{ name, path string }{
		{"data-root", c.DataRoot}, {"exec-root", c.ExecRoot}, {"pidfile", c.Pidfile},
	} {
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("invalid %s %q: must be an absolute path", p.name, p.path)
		}
	}
	for _, h := range c.Hosts {
		if _, err := parseHost(h, c.TLS); err != nil {
			return err
		}
	}
	if c.TLS && (c.TLSCert == "" || c.TLSKey == "") {
		return fmt.Errorf("TLS needs both tlscert and tlskey")
	}
	if c.TLSVerify && c.TLSCACert == "" {
		return fmt.Errorf("tlsverify needs tlscacert")
	}
	if err := validateAPIVersion(c.MinAPIVersion); err != nil {
		return fmt.Errorf("invalid min-api-version: %w", err)
	}
	for _, o := range c.StorageOpts {
		if k, _, ok := strings.Cut(o, "="); !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("invalid storage-opt (%s): must be formatted 'key=value'", o)
		}
	}

	if c.MTU < 0 {
		return fmt.Errorf("invalid default MTU: %d", c.MTU)
	}
	if err := validateCIDR4("bip", c.BIP); err != nil {
		return err
	}
	if err := validateCIDR4("fixed-cidr", c.FixedCIDR); err != nil {
		return err
	}
	for _, p := range c.DefaultAddressPools {
		if err := validatePool(p); err != nil {
			return err
		}
	}
	for _, d := range c.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("invalid dns %q: not an IP address", d)
		}
	}
	for _, d := range c.DNSSearch {
		if !validDomain(d) {
			return fmt.Errorf("%s is not a valid domain", d)
		}
	}

	for _, o := range c.ExecOpts {
		k, v, ok := strings.Cut(o, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return fmt.Errorf("invalid exec-opt (%s): must be formatted 'opt=value'", o)
		}
		if k != "native.cgroupdriver" {
			return fmt.Errorf("invalid exec-opt (%s): unknown option: '%s'", o, k)
		}
	}
	if _, ok := c.Runtimes[DefaultRuntime]; ok {
		return fmt.Errorf("runtime name '%s' is reserved", DefaultRuntime)
	}
	for name, r := range c.Runtimes {
		if name == "" || strings.ContainsAny(name, "/ \t") {
			return fmt.Errorf("invalid runtime name %q", name)
		}
		if r.Path == "" {
			return fmt.Errorf("runtime %s: path is empty", name)
		}
	}
	if c.DefaultRuntime != "" && c.DefaultRuntime != DefaultRuntime {
		if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
			return fmt.Errorf("specified default runtime '%s' does not exist", c.DefaultRuntime)
		}
	}
	for name, u := range c.DefaultUlimits {
		if u.Name != "" && u.Name != name {
			return fmt.Errorf("invalid default-ulimit %s: its name is %q", name, u.Name)
		}
		if _, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", name, u.Soft, u.Hard)); err != nil {
			return fmt.Errorf("invalid default-ulimit %s: %w", name, err)
		}
	}

	for _, m := range c.RegistryMirrors {
		if err := validateMirror(m); err != nil {
			return err
		}
	}
	for _, r := range c.InsecureRegistries {
		if err := validateInsecureRegistry(r); err != nil {
			return err
		}
	}
	if c.MaxConcurrentDownloads < 0 {
		return fmt.Errorf("invalid max concurrent downloads: %d", c.MaxConcurrentDownloads)
	}
	if c.MaxConcurrentUploads < 0 {
		return fmt.Errorf("invalid max concurrent uploads: %d", c.MaxConcurrentUploads)
	}
	if c.MaxDownloadAttempts < 0 {
		return fmt.Errorf("invalid max download attempts: %d", c.MaxDownloadAttempts)
	}

	labels := map[string]string{}
	for _, l := range c.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("bad attribute format: %s", l)
		}
		if prev, dup := labels[k]; dup && prev != v {
			return fmt.Errorf("conflict labels for %s=%s and %s=%s", k, v, k, prev)
		}
		labels[k] = v
	}
	return nil
}

// parseHost normalises an API address as dockerd's -H does: "" and
// "unix://" are the default socket, "host:port" is tcp, tcp:// fills in
// 127.0.0.1 and port 2375 (2376 with TLS), fd:// passes through.
func parseHost(addr string, tls bool) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return DefaultHost, nil
	}
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		proto, rest = "tcp", addr
	}
	switch proto {
	case "unix":
		if rest == "" {
			return DefaultHost, nil
		}
		return "unix://" + rest, nil
	case "fd":
		return "fd://" + rest, nil
	case "tcp":
		return parseTCP(addr, rest, tls)
	default:
		return "", fmt.Errorf("invalid bind address (%s): unsupported proto '%s'", addr, proto)
	}
}

func parseTCP(addr, hostport string, tls bool) (string, error) {
	port := "2375"
	if tls {
		port = "2376"
	}
	if strings.ContainsAny(hostport, "/?#@") {
		return "", fmt.Errorf("invalid bind address format: %s", addr)
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: try again with the default one.
		if host, p, err = net.SplitHostPort(net.JoinHostPort(strings.Trim(hostport, "[]"), port)); err != nil {
			return "", fmt.Errorf("invalid bind address format: %s", addr)
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if p == "" {
		p = port
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("invalid bind address format: %s: bad port %q", addr, p)
	}
	return "tcp://" + net.JoinHostPort(host, p), nil
}

// validateAPIVersion checks a "major.minor" API version lies between
// MinSupportedAPIVersion and MaxAPIVersion.
func validateAPIVersion(v string) error {
	if v == "" {
		return fmt.Errorf("value is empty")
	}
	if strings.EqualFold(v[:1], "v") {
		return fmt.Errorf(`API version must be provided without "v" prefix`)
	}
	cmp, err := compareAPIVersions(v, MinSupportedAPIVersion)
	if err != nil {
		return err
	}
	if cmp < 0 {
		return fmt.Errorf("minimum supported API version is %s: %s", MinSupportedAPIVersion, v)
	}
	if cmp, _ = compareAPIVersions(v, MaxAPIVersion); cmp > 0 {
		return fmt.Errorf("maximum supported API version is %s: %s", MaxAPIVersion, v)
	}
	return nil
}

// compareAPIVersions compares two "major.minor" versions.
func compareAPIVersions(a, b string) (int, error) {
	pa, err := splitAPIVersion(a)
	if err != nil {
		return 0, err
	}
	pb, err := splitAPIVersion(b)
	if err != nil {
		return 0, err
	}
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1, nil
			}
			return 1, nil
		}
	}
	return 0, nil
}

func splitAPIVersion(v string) ([2]int, error) {
	var out [2]int
	maj, min, ok := strings.Cut(v, ".")
	if !ok {
		return out, fmt.Errorf("%q is not major.minor", v)
	}
	for i, s := range []string{maj, min} {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return out, fmt.Errorf("%q is not major.minor", v)
		}
		out[i] = n
	}
	return out, nil
}

// validateCIDR4 checks an optional IPv4 address/prefix option.
func validateCIDR4(name, v string) error {
	if v == "" {
		return nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("invalid %s %q: want an IPv4 address and prefix, such as 192.0.2.1/24", name, v)
	}
	return nil
}

// validatePool checks a default address pool: a valid base, and a subnet
// size no shorter than the base's prefix and within the address length.
func validatePool(p AddressPool) error {
	if !p.Base.IsValid() {
		return fmt.Errorf("invalid default address pool: missing base")
	}
	bits := p.Base.Addr().BitLen()
	if p.Size < p.Base.Bits() || p.Size > bits {
		return fmt.Errorf("invalid default address pool base=%s,size=%d: size must be between %d and %d", p.Base, p.Size, p.Base.Bits(), bits)
	}
	return nil
}

// validDomain reports whether s is a DNS search domain ("." included, as
// dockerd allows).
func validDomain(s string) bool {
	if s == "." {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// validateMirror checks a registry mirror as dockerd does: an http:// or
// https:// URL with no credentials, query or fragment.
func validateMirror(m string) error {
	if scheme, _, ok := strings.Cut(m, "://"); !ok || scheme == "" {
		return fmt.Errorf("invalid mirror: no scheme specified for %q: must use either 'https://' or 'http://'", m)
	}
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("invalid mirror: %q is not a valid URI", m)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid mirror: unsupported scheme %q in %q: must use either 'https://' or 'http://'", u.Scheme, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid mirror: query or fragment at end of the URI %q", u.Redacted())
	}
	if u.User != nil {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return fmt.Errorf("invalid mirror: username/password not allowed in URI %q", u)
	}
	return nil
}

// validateInsecureRegistry checks an insecure registry: a CIDR or a
// host[:port], without scheme.
func validateInsecureRegistry(r string) error {
	if strings.Contains(r, "://") {
		return fmt.Errorf("insecure registry %s should not contain '://'", r)
	}
	if _, err := netip.ParsePrefix(r); err == nil {
		return nil
	}
	host := r
	if h, p, err := net.SplitHostPort(r); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid insecure registry %q: bad port", r)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("invalid insecure registry %q: want host[:port] or CIDR", r)
	}
	return nil
}
