package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// NewParams are the inputs of stage 2.1.
type NewParams struct {
	fx.In

	// Flags is the parsed command line.
	Flags *Flags
	// Level, when supplied, is the daemon logger's level; New sets it
	// from debug and log-level.
	Level zap.AtomicLevel `optional:"true"`
}

// New is stage 2.1 config: it loads the configuration (Load) and sets the
// daemon's log level from it.
func New(p NewParams) (*Config, error) {
	c, err := Load(p.Flags)
	if err != nil {
		return nil, err
	}
	if p.Level != (zap.AtomicLevel{}) {
		p.Level.SetLevel(c.ZapLevel())
	}
	return c, nil
}

// Load builds the configuration from the command line, daemon.json and
// the environment, then validates it, following dockerd:
//
//   - daemon.json is read from --config-file; a missing file is fine at
//     the default path and fatal when --config-file was given;
//   - a key set both in the file and by its flag is fatal whatever the
//     values ("runtimes" excepted: they merge); a key no option matches is
//     fatal; a value of the wrong JSON type is fatal and names the key;
//   - a file's error, and a validation error once a file was read, is
//     prefixed "unable to configure the daemon with file <path>: ";
//   - DOCKER_DRIVER, DOCKER_TMPDIR and DOCKER_MIN_API_VERSION are read;
//   - with TLS on, the certificate, key and (with tlsverify) CA files are
//     read and parsed, so a missing or bad file fails here.
//
// Load reads nothing else and writes nothing; it needs no privilege.
// f must come from ParseFlags.
func Load(f *Flags) (*Config, error) {
	if f == nil {
		return nil, errors.New("load configuration: no command line")
	}
	c := f.Options.Clone()
	if c.ConfigFile == "" {
		c.ConfigFile = DefaultConfigFile
	}
	fileErr := func(err error) error {
		return fmt.Errorf("unable to configure the daemon with file %s: %w", c.ConfigFile, err)
	}

	b, err := os.ReadFile(c.ConfigFile)
	haveFile := err == nil
	switch {
	case haveFile:
		set, err := parseFile(b)
		if err != nil {
			return nil, fileErr(err)
		}
		if err := c.merge(set, f); err != nil {
			return nil, fileErr(err)
		}
	case errors.Is(err, fs.ErrNotExist) && !f.Changed("config-file"):
		// No daemon.json at the default path: flags and defaults only.
	default:
		return nil, fileErr(err)
	}
	c.TLSExplicit = c.TLSExplicit || f.Changed("tls")
	c.GroupExplicit = c.GroupExplicit || f.Changed("group")

	c.StorageDriverEnv = os.Getenv("DOCKER_DRIVER")
	c.DockerTmpdir = os.Getenv("DOCKER_TMPDIR")
	if v := os.Getenv("DOCKER_MIN_API_VERSION"); v != "" {
		c.MinAPIVersion = v
	}

	if err := c.complete(); err != nil {
		if haveFile {
			return nil, fileErr(err)
		}
		return nil, err
	}
	if err := c.Validate(); err != nil {
		if haveFile {
			return nil, fileErr(err)
		}
		return nil, err
	}
	if err := c.checkTLSFiles(); err != nil {
		return nil, err
	}
	return c, nil
}

// complete fills the options whose value follows from others: TLS from
// tlsverify, the default host, normalised hosts, absolute paths, the
// default minimum API version.
func (c *Config) complete() error {
	if c.TLSVerify {
		c.TLS = true // tlsverify implies tls, as in dockerd
	}
	if c.MinAPIVersion == "" {
		c.MinAPIVersion = DefaultMinAPIVersion
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []string{DefaultHost}
	}
	for i, h := range c.Hosts {
		n, err := parseHost(h, c.TLS)
		if err != nil {
			return err
		}
		c.Hosts[i] = n
	}
	for _, p := range []*string{&c.DataRoot, &c.ExecRoot, &c.Pidfile} {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// checkTLSFiles reads and parses the TLS files when TLS is on.
func (c *Config) checkTLSFiles() error {
	if !c.TLS {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		return fmt.Errorf("load TLS key pair (tlscert %s, tlskey %s): %w", c.TLSCert, c.TLSKey, err)
	}
	if !c.TLSVerify {
		return nil
	}
	pem, err := os.ReadFile(c.TLSCACert)
	if err != nil {
		return fmt.Errorf("load TLS CA: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("load TLS CA: %s holds no PEM certificate", c.TLSCACert)
	}
	return nil
}

// directive is one daemon.json key.
type directive struct {
	// flag is the long name of the flag setting the same option, "" when
	// only the file can set it.
	flag string
	// field returns a pointer to the Config field the key decodes into.
	field func(c *Config) any
}

// directives are daemon.json's keys, with dockerd's names (a read-only
// table).
var directives = map[string]directive{
	"data-root":                {"data-root", func(c *Config) any { return &c.DataRoot }},
	"exec-root":                {"exec-root", func(c *Config) any { return &c.ExecRoot }},
	"pidfile":                  {"pidfile", func(c *Config) any { return &c.Pidfile }},
	"hosts":                    {"host", func(c *Config) any { return &c.Hosts }},
	"group":                    {"group", func(c *Config) any { return &c.Group }},
	"api-cors-header":          {"api-cors-header", func(c *Config) any { return &c.CORSHeaders }},
	"min-api-version":          {"", func(c *Config) any { return &c.MinAPIVersion }},
	"tls":                      {"tls", func(c *Config) any { return &c.TLS }},
	"tlsverify":                {"tlsverify", func(c *Config) any { return &c.TLSVerify }},
	"tlscacert":                {"tlscacert", func(c *Config) any { return &c.TLSCACert }},
	"tlscert":                  {"tlscert", func(c *Config) any { return &c.TLSCert }},
	"tlskey":                   {"tlskey", func(c *Config) any { return &c.TLSKey }},
	"debug":                    {"debug", func(c *Config) any { return &c.Debug }},
	"log-level":                {"log-level", func(c *Config) any { return &c.LogLevel }},
	"log-format":               {"log-format", func(c *Config) any { return &c.LogFormat }},
	"storage-driver":           {"storage-driver", func(c *Config) any { return &c.StorageDriver }},
	"storage-opts":             {"storage-opt", func(c *Config) any { return &c.StorageOpts }},
	"userns-remap":             {"userns-remap", func(c *Config) any { return &c.UsernsRemap }},
	"bridge":                   {"bridge", func(c *Config) any { return &c.Bridge }},
	"bip":                      {"bip", func(c *Config) any { return &c.BIP }},
	"fixed-cidr":               {"fixed-cidr", func(c *Config) any { return &c.FixedCIDR }},
	"mtu":                      {"mtu", func(c *Config) any { return &c.MTU }},
	"icc":                      {"icc", func(c *Config) any { return &c.ICC }},
	"iptables":                 {"iptables", func(c *Config) any { return &c.IPTables }},
	"ip-forward":               {"ip-forward", func(c *Config) any { return &c.IPForward }},
	"ip-masq":                  {"ip-masq", func(c *Config) any { return &c.IPMasq }},
	"ipv6":                     {"ipv6", func(c *Config) any { return &c.IPv6 }},
	"default-address-pools":    {"default-address-pool", func(c *Config) any { return &c.DefaultAddressPools }},
	"dns":                      {"dns", func(c *Config) any { return &c.DNS }},
	"dns-search":               {"dns-search", func(c *Config) any { return &c.DNSSearch }},
	"dns-opts":                 {"dns-opt", func(c *Config) any { return &c.DNSOpts }},
	"exec-opts":                {"exec-opt", func(c *Config) any { return &c.ExecOpts }},
	"cgroup-parent":            {"cgroup-parent", func(c *Config) any { return &c.CgroupParent }},
	"runtimes":                 {"add-runtime", func(c *Config) any { return &c.Runtimes }},
	"default-runtime":          {"default-runtime", func(c *Config) any { return &c.DefaultRuntime }},
	"init-path":                {"init-path", func(c *Config) any { return &c.InitPath }},
	"default-ulimits":          {"default-ulimit", func(c *Config) any { return &c.DefaultUlimits }},
	"selinux-enabled":          {"selinux-enabled", func(c *Config) any { return &c.SELinuxEnabled }},
	"live-restore":             {"live-restore", func(c *Config) any { return &c.LiveRestore }},
	"shutdown-timeout":         {"shutdown-timeout", func(c *Config) any { return (*secondsValue)(&c.ShutdownTimeout) }},
	"log-driver":               {"log-driver", func(c *Config) any { return &c.LogDriver }},
	"log-opts":                 {"log-opt", func(c *Config) any { return &c.LogOpts }},
	"registry-mirrors":         {"registry-mirror", func(c *Config) any { return &c.RegistryMirrors }},
	"insecure-registries":      {"insecure-registry", func(c *Config) any { return &c.InsecureRegistries }},
	"max-concurrent-downloads": {"max-concurrent-downloads", func(c *Config) any { return &c.MaxConcurrentDownloads }},
	"max-concurrent-uploads":   {"max-concurrent-uploads", func(c *Config) any { return &c.MaxConcurrentUploads }},
	"max-download-attempts":    {"max-download-attempts", func(c *Config) any { return &c.MaxDownloadAttempts }},
	"labels":                   {"label", func(c *Config) any { return &c.Labels }},
}

// mergingKeys may be given both as a flag and in the file; the two merge
// (read-only).
var mergingKeys = map[string]bool{"runtimes": true}

// flatOptions are the keys whose object value is a map of their own, not a
// group of directives to flatten (dockerd's flatOptions; those wharfd does
// not know stay whole so the unknown key reported is theirs; read-only).
var flatOptions = map[string]bool{
	"log-opts":             true,
	"runtimes":             true,
	"default-ulimits":      true,
	"features":             true,
	"builder":              true,
	"default-network-opts": true,
	"cluster-store-opts":   true,
}

// parseFile parses daemon.json into its directives, flattening nested
// objects one level as dockerd does. An empty file has none.
func parseFile(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 BOM, as Notepad writes
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(b, syn.Offset)
			return nil, fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, fmt.Errorf("want a JSON object, got %s", typ.Value)
		}
		return nil, err
	}
	set := make(map[string]json.RawMessage, len(top))
	add := func(k string, v json.RawMessage) error {
		if _, dup := set[k]; dup {
			return fmt.Errorf("directive %q given twice", k)
		}
		set[k] = v
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		v := top[k]
		if flatOptions[k] || !isObject(v) {
			if err := add(k, v); err != nil {
				return nil, err
			}
			continue
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(v, &inner); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		for _, ik := range slices.Sorted(maps.Keys(inner)) {
			if err := add(ik, inner[ik]); err != nil {
				return nil, err
			}
		}
	}
	return set, nil
}

// merge applies the file's directives over c, which holds the flags'
// values, refusing unknown keys, flag/file conflicts and mistyped values.
func (c *Config) merge(set map[string]json.RawMessage, f *Flags) error {
	keys := slices.Sorted(maps.Keys(set))

	var unknown []string
	for _, k := range keys {
		if _, ok := directives[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}

	var conflicts []string
	for _, k := range keys {
		d := directives[k]
		if d.flag == "" || mergingKeys[k] || !f.Changed(d.flag) {
			continue
		}
		var fileValue any
		_ = json.Unmarshal(set[k], &fileValue) // valid JSON: parsed before
		conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %v)", k, f.changed[d.flag], fileValue))
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}

	var bad []string
	for _, k := range keys {
		if err := c.decode(k, set[k]); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	if _, ok := set["tls"]; ok {
		c.TLSExplicit = true
	}
	if _, ok := set["group"]; ok {
		c.GroupExplicit = true
	}
	return nil
}

// decode sets the option of key k from its JSON value.
func (c *Config) decode(k string, raw json.RawMessage) error {
	dst := reflect.ValueOf(directives[k].field(c))
	v := reflect.New(dst.Type().Elem())
	if err := unmarshalStrict(raw, v.Interface()); err != nil {
		if t := v.Type().Elem(); t.Kind() == reflect.Map && isObject(raw) {
			// Name the entry at fault: encoding/json does not.
			if err := mapEntryError(k, raw, t.Elem()); err != nil {
				return err
			}
		}
		return valueError(k, raw, err)
	}
	if mergingKeys[k] {
		return c.mergeRuntimes(*v.Interface().(*map[string]Runtime))
	}
	dst.Elem().Set(v.Elem())
	return nil
}

// mapEntryError returns the error of the first entry of the JSON object
// raw that does not decode as elem, named "<k>: <entry>".
func mapEntryError(k string, raw json.RawMessage, elem reflect.Type) error {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		if err := unmarshalStrict(entries[name], reflect.New(elem).Interface()); err != nil {
			return valueError(k+": "+name, entries[name], err)
		}
	}
	return nil
}

// mergeRuntimes adds the file's runtimes to those of --add-runtime.
func (c *Config) mergeRuntimes(file map[string]Runtime) error {
	merged := maps.Clone(c.Runtimes)
	if merged == nil {
		merged = map[string]Runtime{}
	}
	for name, r := range file {
		if _, dup := merged[name]; dup {
			return fmt.Errorf("runtimes: runtime %q is given both with --add-runtime and in the file", name)
		}
		merged[name] = r
	}
	c.Runtimes = merged
	return nil
}

// unmarshalStrict decodes one JSON value, refusing unknown object fields.
func unmarshalStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the value")
	}
	return nil
}

// valueError describes a value of the wrong shape, naming the key.
func valueError(k string, raw json.RawMessage, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		got := typ.Value
		where := k
		if typ.Field != "" {
			where += ": " + typ.Field
		} else {
			got += " " + abbreviate(string(raw))
		}
		return fmt.Errorf("%s: want %s, got %s", where, describeType(typ.Type), got)
	}
	return fmt.Errorf("%s: %s", k, strings.TrimPrefix(err.Error(), "json: "))
}

// describeType names a Go type the way a JSON user thinks of it.
func describeType(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// abbreviate shortens a JSON text for an error message.
func abbreviate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// isObject reports whether the JSON value is an object.
func isObject(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '{'
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n') - 1
	if col < 1 {
		col = 1
	}
	return line, col
}
