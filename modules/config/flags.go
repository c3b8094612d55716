package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// Flags is the parsed command line.
type Flags struct {
	// Options holds every daemon option as the command line gives it: a
	// flag's value, or its default when the flag is absent. Fields no flag
	// sets stay zero. Load merges daemon.json over the defaults.
	Options Config
	// Help is -h/--help.
	Help bool
	// Version is -v/--version.
	Version bool
	// Validate is --validate: load and check the configuration, then exit.
	Validate bool
	// DumpGraph is --dump-graph's format: "" when not given, "dot" when
	// given bare, or "json".
	DumpGraph string

	// changed maps each flag given on the command line (long name) to its
	// value as the conflict message prints it.
	changed map[string]string
}

// Changed reports whether the flag with the given long name (such as
// "config-file" or "tls") was given on the command line.
func (f *Flags) Changed(name string) bool {
	_, ok := f.changed[name]
	return ok
}

// ParseFlags parses the command line, args without the program name, with
// dockerd's flag names. A flag not given takes its default (ParseFlags(nil)
// gives all defaults). An unknown flag, a bad value or a positional
// argument is an error whose message gives the reason; pointing at --help
// is the caller's job.
func ParseFlags(args []string) (*Flags, error) {
	f := &Flags{}
	fs := newFlagSet(f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		if a := fs.Arg(0); f.DumpGraph != "" && (a == "dot" || a == "json") {
			// --dump-graph takes its format only after "=".
			return nil, fmt.Errorf("%q accepts no arguments (got %q); use --dump-graph=%s", programName, a, a)
		}
		return nil, fmt.Errorf("%q accepts no arguments (got %q)", programName, fs.Arg(0))
	}
	f.changed = map[string]string{}
	fs.Visit(func(fl *pflag.Flag) { f.changed[fl.Name] = fl.Value.String() })
	return f, nil
}

// Usage writes `wharfd --help`, in dockerd's shape: usage line,
// description, options.
func Usage(w io.Writer) {
	fs := newFlagSet(&Flags{})
	fmt.Fprintf(w, "Usage:\t%s [OPTIONS]\n\n", programName)
	fmt.Fprintf(w, "A container engine that speaks the Docker Engine API, booted as a graph of named stages.\n\n")
	fmt.Fprintf(w, "Options:\n%s", fs.FlagUsagesWrapped(0))
}

const programName = "wharfd"

// newFlagSet declares wharfd's flags, bound to f.
func newFlagSet(f *Flags) *pflag.FlagSet {
	fs := pflag.NewFlagSet(programName, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage printed by Usage
	fs.Usage = func() {}
	fs.SortFlags = true
	o := &f.Options

	fs.StringVar(&o.ConfigFile, "config-file", DefaultConfigFile, "Daemon configuration file")
	fs.StringVar(&o.DataRoot, "data-root", DefaultDataRoot, "Root directory of persistent wharfd state")
	fs.StringVar(&o.ExecRoot, "exec-root", DefaultExecRoot, "Root directory for execution state files")
	fs.StringVarP(&o.Pidfile, "pidfile", "p", DefaultPidfile, "Path to use for daemon PID file")

	fs.VarP(&listValue{p: &o.Hosts}, "host", "H", "Daemon socket(s) to connect to (default "+DefaultHost+")")
	fs.StringVarP(&o.Group, "group", "G", DefaultGroup, "Group for the unix socket")
	fs.StringVar(&o.CORSHeaders, "api-cors-header", "", "Set CORS headers in the Engine API")

	boolVarP(fs, &o.TLS, "tls", "", false, "Use TLS; implied by --tlsverify")
	boolVarP(fs, &o.TLSVerify, "tlsverify", "", false, "Use TLS and verify the remote")
	fs.StringVar(&o.TLSCACert, "tlscacert", "", "Trust certs signed only by this CA")
	fs.StringVar(&o.TLSCert, "tlscert", "", "Path to TLS certificate file")
	fs.StringVar(&o.TLSKey, "tlskey", "", "Path to TLS key file")

	boolVarP(fs, &o.Debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&o.LogLevel, "log-level", "l", DefaultLogLevel, `Set the logging level ("trace"|"debug"|"info"|"warn"|"error"|"fatal"|"panic")`)
	fs.StringVar(&o.LogFormat, "log-format", DefaultLogFormat, `Set the logging format ("text"|"json")`)

	fs.StringVarP(&o.StorageDriver, "storage-driver", "s", "", "Storage driver to use")
	fs.Var(&listValue{p: &o.StorageOpts}, "storage-opt", "Storage driver options")
	fs.StringVar(&o.UsernsRemap, "userns-remap", "", "User/Group setting for user namespaces")

	fs.StringVarP(&o.Bridge, "bridge", "b", "", `Attach containers to a network bridge ("none" disables the default bridge)`)
	fs.StringVar(&o.BIP, "bip", "", "IPv4 address and prefix of the default bridge")
	fs.StringVar(&o.FixedCIDR, "fixed-cidr", "", "IPv4 subnet for the default bridge network")
	fs.IntVar(&o.MTU, "mtu", 0, "Set the MTU for the default \"bridge\" network (default 1500)")
	boolVarP(fs, &o.ICC, "icc", "", true, "Enable inter-container communication for the default bridge network")
	boolVarP(fs, &o.IPTables, "iptables", "", true, "Enable addition of iptables rules")
	boolVarP(fs, &o.IPForward, "ip-forward", "", true, "Enable IP forwarding in system configuration")
	boolVarP(fs, &o.IPMasq, "ip-masq", "", true, "Enable IP masquerading for the default bridge network")
	boolVarP(fs, &o.IPv6, "ipv6", "", false, "Enable IPv6 networking for the default bridge network")
	fs.Var(&poolValue{p: &o.DefaultAddressPools}, "default-address-pool", "Default address pools for node specific local networks")
	fs.Var(&listValue{p: &o.DNS}, "dns", "DNS server to use")
	fs.Var(&listValue{p: &o.DNSSearch}, "dns-search", "DNS search domains to use")
	fs.Var(&listValue{p: &o.DNSOpts}, "dns-opt", "DNS options to use")

	fs.Var(&listValue{p: &o.ExecOpts}, "exec-opt", "Runtime execution options")
	fs.StringVar(&o.CgroupParent, "cgroup-parent", "", "Set parent cgroup for all containers")
	fs.Var(&runtimeValue{p: &o.Runtimes}, "add-runtime", "Register an additional OCI compatible runtime")
	fs.StringVar(&o.DefaultRuntime, "default-runtime", DefaultRuntime, "Default OCI runtime for containers")
	fs.StringVar(&o.InitPath, "init-path", "", "Path to the docker-init binary")
	fs.Var(&ulimitValue{p: &o.DefaultUlimits}, "default-ulimit", "Default ulimits for containers")
	boolVarP(fs, &o.SELinuxEnabled, "selinux-enabled", "", false, "Enable selinux support")
	boolVarP(fs, &o.LiveRestore, "live-restore", "", false, "Enable live restore of wharfd when containers are still running")
	o.ShutdownTimeout = DefaultShutdownTimeout
	fs.Var((*secondsValue)(&o.ShutdownTimeout), "shutdown-timeout", "Set the default shutdown timeout, in seconds")
	fs.StringVar(&o.LogDriver, "log-driver", DefaultLogDriver, "Default driver for container logs")
	fs.Var(&mapValue{p: &o.LogOpts}, "log-opt", "Default log driver options for containers")

	fs.Var(&listValue{p: &o.RegistryMirrors}, "registry-mirror", "Preferred Docker registry mirror")
	fs.Var(&listValue{p: &o.InsecureRegistries}, "insecure-registry", "Enable insecure registry communication")
	fs.IntVar(&o.MaxConcurrentDownloads, "max-concurrent-downloads", DefaultMaxConcurrentDownloads, "Set the max concurrent downloads")
	fs.IntVar(&o.MaxConcurrentUploads, "max-concurrent-uploads", DefaultMaxConcurrentUploads, "Set the max concurrent uploads")
	fs.IntVar(&o.MaxDownloadAttempts, "max-download-attempts", DefaultMaxDownloadAttempts, "Set the max download attempts for each pull")
	fs.Var(&listValue{p: &o.Labels}, "label", "Set key=value labels to the daemon")

	boolVarP(fs, &f.Validate, "validate", "", false, "Validate daemon configuration and exit")
	fs.Var(&graphFormatValue{p: &f.DumpGraph}, "dump-graph", "Print the boot graph in `format` dot or json, and exit")
	fs.Lookup("dump-graph").NoOptDefVal = "dot"
	boolVarP(fs, &f.Help, "help", "h", false, "Print usage")
	boolVarP(fs, &f.Version, "version", "v", false, "Print version information and quit")
	return fs
}

// boolVarP declares a boolean flag that may be given bare (--tls) or
// with a value (--tls=false). Unlike pflag's own, it is listed in --help
// without "[=true|false]", as dockerd lists its booleans.
func boolVarP(fs *pflag.FlagSet, p *bool, name, shorthand string, value bool, usage string) {
	*p = value
	fs.VarP((*boolValue)(p), name, shorthand, usage)
	fs.Lookup(name).NoOptDefVal = "true"
}

// boolValue is a boolean flag value (see boolVarP).
type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) Type() string   { return "bool" }
func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

// listValue is a repeatable flag appending each value as given (no comma
// splitting), like dockerd's ListOpts.
type listValue struct{ p *[]string }

func (v *listValue) Set(s string) error { *v.p = append(*v.p, s); return nil }
func (v *listValue) Type() string       { return "list" }
func (v *listValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", *v.p)
}

// mapValue is a repeatable key=value flag, like dockerd's MapOpts.
type mapValue struct{ p *map[string]string }

func (v *mapValue) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	if *v.p == nil {
		*v.p = map[string]string{}
	}
	(*v.p)[k] = val
	return nil
}
func (v *mapValue) Type() string { return "map" }
func (v *mapValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", *v.p)
}

// runtimeValue is --add-runtime name=path.
type runtimeValue struct{ p *map[string]Runtime }

func (v *runtimeValue) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("%q is not name=path", s)
	}
	if _, dup := (*v.p)[name]; dup {
		return fmt.Errorf("runtime %q given twice", name)
	}
	if *v.p == nil {
		*v.p = map[string]Runtime{}
	}
	(*v.p)[name] = Runtime{Path: path}
	return nil
}
func (v *runtimeValue) Type() string { return "runtime" }
func (v *runtimeValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	var s []string
	for _, name := range slices.Sorted(maps.Keys(*v.p)) {
		s = append(s, name+"="+(*v.p)[name].Path)
	}
	return fmt.Sprintf("%v", s)
}

// ulimitValue is --default-ulimit name=soft[:hard].
type ulimitValue struct{ p *map[string]Ulimit }

func (v *ulimitValue) Set(s string) error {
	u, err := units.ParseUlimit(s)
	if err != nil {
		return err
	}
	if *v.p == nil {
		*v.p = map[string]Ulimit{}
	}
	(*v.p)[u.Name] = Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard}
	return nil
}
func (v *ulimitValue) Type() string { return "ulimit" }
func (v *ulimitValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	var s []string
	for _, name := range slices.Sorted(maps.Keys(*v.p)) {
		u := (*v.p)[name]
		s = append(s, fmt.Sprintf("%s=%d:%d", name, u.Soft, u.Hard))
	}
	return fmt.Sprintf("%v", s)
}

// poolValue is --default-address-pool base=CIDR,size=N.
type poolValue struct{ p *[]AddressPool }

func (v *poolValue) Set(s string) error {
	p, err := parsePool(s)
	if err != nil {
		return err
	}
	*v.p = append(*v.p, p)
	return nil
}
func (v *poolValue) Type() string { return "pool-options" }
func (v *poolValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	var s []string
	for _, p := range *v.p {
		s = append(s, fmt.Sprintf("base=%s,size=%d", p.Base, p.Size))
	}
	return fmt.Sprintf("%v", s)
}

// parsePool parses base=CIDR,size=N.
func parsePool(s string) (AddressPool, error) {
	var p AddressPool
	var haveBase, haveSize bool
	for _, field := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(field, "=")
		if !ok {
			return p, fmt.Errorf("invalid address pool %q: %q is not key=value", s, field)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "base":
			b, err := netip.ParsePrefix(strings.TrimSpace(val))
			if err != nil {
				return p, fmt.Errorf("invalid address pool %q: %w", s, err)
			}
			p.Base, haveBase = b, true
		case "size":
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				return p, fmt.Errorf("invalid address pool %q: size %q is not an integer", s, val)
			}
			p.Size, haveSize = n, true
		default:
			return p, fmt.Errorf("invalid address pool %q: unknown field %q (want base and size)", s, k)
		}
	}
	if !haveBase || !haveSize {
		return p, fmt.Errorf("invalid address pool %q: want base=CIDR,size=N", s)
	}
	return p, nil
}

// secondsValue is a duration given in whole seconds, as dockerd's
// --shutdown-timeout and daemon.json "shutdown-timeout".
type secondsValue time.Duration

func (v *secondsValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want whole seconds")
	}
	*v = secondsValue(time.Duration(n) * time.Second)
	return nil
}
func (v *secondsValue) Type() string   { return "int" }
func (v *secondsValue) String() string { return strconv.Itoa(int(time.Duration(*v) / time.Second)) }

// UnmarshalJSON reads an integer number of seconds.
func (v *secondsValue) UnmarshalJSON(b []byte) error {
	var n int
	if err := unmarshalStrict(b, &n); err != nil {
		return err
	}
	*v = secondsValue(time.Duration(n) * time.Second)
	return nil
}

// graphFormatValue is --dump-graph[=dot|json].
type graphFormatValue struct{ p *string }

func (v *graphFormatValue) Set(s string) error {
	if s != "dot" && s != "json" {
		return errors.New(`want "dot" or "json"`)
	}
	*v.p = s
	return nil
}
func (v *graphFormatValue) Type() string   { return "format" }
func (v *graphFormatValue) String() string { return *v.p }
