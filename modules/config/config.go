package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Defaults of the options whose default is not the zero value. They are the
// flags' defaults, so `wharfd --help` shows them.
const (
	// DefaultConfigFile is where daemon.json is read from without --config-file.
	DefaultConfigFile = "/etc/wharfd/daemon.json"
	// DefaultDataRoot is the default --data-root.
	DefaultDataRoot = "/var/lib/wharfd"
	// DefaultExecRoot is the default --exec-root.
	DefaultExecRoot = "/var/run/wharfd"
	// DefaultPidfile is the default --pidfile.
	DefaultPidfile = "/var/run/wharfd.pid"
	// DefaultHost is the API socket used when no -H/--host and no "hosts"
	// is given: the socket the docker CLI looks for.
	DefaultHost = "unix:///var/run/docker.sock"
	// DefaultGroup is the default --group owning the unix sockets.
	DefaultGroup = "docker"
	// DefaultLogLevel is the default --log-level.
	DefaultLogLevel = "info"
	// DefaultLogFormat is the default --log-format.
	DefaultLogFormat = "text"
	// DefaultMTU is the MTU of the default bridge when --mtu is 0 or unset.
	DefaultMTU = 1500
	// DefaultMaxConcurrentDownloads is the default --max-concurrent-downloads.
	DefaultMaxConcurrentDownloads = 3
	// DefaultMaxConcurrentUploads is the default --max-concurrent-uploads.
	DefaultMaxConcurrentUploads = 5
	// DefaultMaxDownloadAttempts is the default --max-download-attempts.
	DefaultMaxDownloadAttempts = 5
	// DefaultShutdownTimeout is the default --shutdown-timeout.
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultRuntime is the name of the built-in OCI runtime (libcontainer);
	// no configured runtime may take the name.
	DefaultRuntime = "runc"
	// DefaultLogDriver is the default --log-driver.
	DefaultLogDriver = "json-file"
	// DefaultMinAPIVersion is the oldest API version served unless
	// min-api-version or DOCKER_MIN_API_VERSION says otherwise.
	DefaultMinAPIVersion = "1.40"
	// MinSupportedAPIVersion is the lowest value min-api-version accepts.
	MinSupportedAPIVersion = "1.24"
	// MaxAPIVersion is the API version the daemon reports; min-api-version
	// may not exceed it.
	MaxAPIVersion = "1.56"
	// CgroupDriverCgroupfs and CgroupDriverSystemd are the cgroup drivers
	// (exec-opt native.cgroupdriver); cgroupfs is the default.
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
	// BridgeNone is the --bridge value that disables the default bridge.
	BridgeNone = "none"
)

// Config is the daemon configuration: daemon.json merged with the command
// line and the environment. Load builds it and validates it; after that it
// is read-only (a reload produces a new *Config, see Live).
//
// Each field names its daemon.json key and flag. Lists and maps from the
// command line come from repeating the flag.
type Config struct {
	// Paths.

	// ConfigFile is the daemon.json path (--config-file; default
	// /etc/wharfd/daemon.json). Not a daemon.json key.
	ConfigFile string
	// DataRoot is the root of persistent state ("data-root", --data-root;
	// default /var/lib/wharfd).
	DataRoot string
	// ExecRoot is the root of runtime state ("exec-root", --exec-root;
	// default /var/run/wharfd).
	ExecRoot string
	// Pidfile is the daemon's pid file ("pidfile", -p/--pidfile; default
	// /var/run/wharfd.pid).
	Pidfile string

	// API.

	// Hosts are the API listen addresses, normalised by Load:
	// unix:///path, tcp://host:port or fd://[name] ("hosts", -H/--host;
	// default unix:///var/run/docker.sock).
	Hosts []string
	// Group owns the unix sockets ("group", -G/--group; default docker).
	Group string
	// GroupExplicit reports whether group was given, as a flag or in
	// daemon.json: a missing default group only warns, a missing group the
	// user named is fatal.
	GroupExplicit bool
	// CORSHeaders is the Access-Control-Allow-Origin value the API sends;
	// empty sends none ("api-cors-header", --api-cors-header).
	CORSHeaders string
	// MinAPIVersion is the oldest API version served, "1.x"
	// ("min-api-version", or the DOCKER_MIN_API_VERSION environment
	// variable, which wins; default 1.40).
	MinAPIVersion string

	// TLS for tcp:// hosts.

	// TLS serves tcp:// hosts over TLS ("tls", --tls; default false;
	// --tlsverify implies it).
	TLS bool
	// TLSExplicit reports whether tls was given at all, as a flag or in
	// daemon.json, whatever its value: the API server refuses a tcp://
	// host without TLS unless TLS was turned off explicitly.
	TLSExplicit bool
	// TLSVerify requires client certificates signed by TLSCACert
	// ("tlsverify", --tlsverify; default false).
	TLSVerify bool
	// TLSCACert is the CA bundle (PEM) that client certificates must
	// chain to ("tlscacert", --tlscacert); required with TLSVerify.
	TLSCACert string
	// TLSCert is the server certificate (PEM) ("tlscert", --tlscert);
	// required with TLS.
	TLSCert string
	// TLSKey is the server key (PEM) ("tlskey", --tlskey); required with
	// TLS.
	TLSKey string

	// Logging.

	// Debug turns on debug logging ("debug", -D/--debug; default false;
	// reloadable).
	Debug bool
	// LogLevel is the daemon's log level: trace, debug, info, warn, error,
	// fatal or panic ("log-level", -l/--log-level; default info).
	LogLevel string
	// LogFormat is the daemon's log format, text or json ("log-format",
	// --log-format; default text).
	LogFormat string

	// Storage.

	// StorageDriver is the graph driver ("storage-driver",
	// -s/--storage-driver; default: chosen by the storage stage). The
	// DOCKER_DRIVER environment variable beats it; see StorageDriverName.
	StorageDriver string
	// StorageDriverEnv is the DOCKER_DRIVER environment variable, empty
	// when unset.
	StorageDriverEnv string
	// StorageOpts are the graph driver's key=value options
	// ("storage-opts", --storage-opt).
	StorageOpts []string
	// UsernsRemap is the user namespace remapping, "default" or
	// user[:group]; empty turns it off ("userns-remap", --userns-remap).
	UsernsRemap string
	// DockerTmpdir is the DOCKER_TMPDIR environment variable: the
	// daemon's temporary directory instead of <data-root>/tmp; empty when
	// unset.
	DockerTmpdir string

	// Network.

	// Bridge is the default bridge's interface; "none" disables the
	// default bridge ("bridge", -b/--bridge; default: docker0, created).
	Bridge string
	// BIP is the default bridge's address and prefix, such as
	// 192.0.2.1/24 ("bip", --bip).
	BIP string
	// FixedCIDR is the subnet, within the bridge's, from which container
	// addresses are allocated ("fixed-cidr", --fixed-cidr).
	FixedCIDR string
	// MTU is the default bridge's MTU in bytes; 0 means 1500 ("mtu",
	// --mtu).
	MTU int
	// ICC allows traffic between containers on the default bridge
	// ("icc", --icc; default true).
	ICC bool
	// IPTables lets the daemon manage packet filter rules ("iptables",
	// --iptables; default true).
	IPTables bool
	// IPForward enables IP forwarding on the host ("ip-forward",
	// --ip-forward; default true).
	IPForward bool
	// IPMasq masquerades traffic leaving the bridge ("ip-masq",
	// --ip-masq; default true).
	IPMasq bool
	// IPv6 enables IPv6 on the default bridge ("ipv6", --ipv6; default
	// false).
	IPv6 bool
	// DefaultAddressPools are the pools networks' subnets are carved from
	// ("default-address-pools", --default-address-pool base=…,size=…);
	// empty means the built-in pools.
	DefaultAddressPools []AddressPool
	// DNS are the nameservers given to containers, IP addresses ("dns",
	// --dns).
	DNS []string
	// DNSSearch are the search domains given to containers ("dns-search",
	// --dns-search).
	DNSSearch []string
	// DNSOpts are the resolv.conf options given to containers ("dns-opts",
	// --dns-opt).
	DNSOpts []string

	// Runtime.

	// ExecOpts are the runtime's key=value options; the only key is
	// native.cgroupdriver ("exec-opts", --exec-opt).
	ExecOpts []string
	// CgroupParent is the parent cgroup of containers; with the systemd
	// driver a slice name, "xxx.slice" ("cgroup-parent", --cgroup-parent).
	CgroupParent string
	// Runtimes are the additional OCI runtimes by name ("runtimes",
	// --add-runtime name=path). Flags and file merge: the one exception
	// to the flag/file conflict rule, as in dockerd.
	Runtimes map[string]Runtime
	// DefaultRuntime is the runtime containers use unless they ask for
	// another ("default-runtime", --default-runtime; default runc).
	DefaultRuntime string
	// InitPath is the init run as PID 1 of containers started with
	// --init ("init-path", --init-path). An absolute path is used as is;
	// a name is looked up as dockerd's docker-init (its libexec
	// directories, then PATH). Empty means docker-init, then Debian's
	// tini-static, then tini.
	InitPath string
	// DefaultUlimits are the containers' default rlimits by name
	// ("default-ulimits", --default-ulimit name=soft[:hard]).
	DefaultUlimits map[string]Ulimit
	// SELinuxEnabled turns on SELinux labelling ("selinux-enabled",
	// --selinux-enabled; default false).
	SELinuxEnabled bool
	// LiveRestore keeps containers running while the daemon is down
	// ("live-restore", --live-restore; default false; reloadable).
	LiveRestore bool
	// ShutdownTimeout is how long the daemon waits for containers to stop
	// when it shuts down ("shutdown-timeout", --shutdown-timeout, whole
	// seconds; default 15s; reloadable). A negative value waits without
	// limit, as in dockerd.
	ShutdownTimeout time.Duration
	// LogDriver is the containers' default log driver ("log-driver",
	// --log-driver; default json-file).
	LogDriver string
	// LogOpts are the log driver's options; in daemon.json every value is
	// a string ("log-opts", --log-opt key=value).
	LogOpts map[string]string

	// Registries and transfers.

	// RegistryMirrors are the Docker Hub mirrors, http:// or https:// URLs
	// without credentials ("registry-mirrors", --registry-mirror;
	// reloadable).
	RegistryMirrors []string
	// InsecureRegistries are registries reached without TLS verification,
	// host[:port] or CIDR ("insecure-registries", --insecure-registry;
	// reloadable).
	InsecureRegistries []string
	// MaxConcurrentDownloads is the number of layers pulled at once per
	// pull ("max-concurrent-downloads", --max-concurrent-downloads;
	// default 3; reloadable).
	MaxConcurrentDownloads int
	// MaxConcurrentUploads is the number of layers pushed at once per push
	// ("max-concurrent-uploads", --max-concurrent-uploads; default 5;
	// reloadable).
	MaxConcurrentUploads int
	// MaxDownloadAttempts is the number of tries of each layer download
	// ("max-download-attempts", --max-download-attempts; default 5;
	// reloadable).
	MaxDownloadAttempts int

	// Labels are the daemon's key=value labels ("labels", --label;
	// reloadable).
	Labels []string
}

// Runtime is an additional OCI runtime (daemon.json "runtimes": {"name":
// {"path": "...", "runtimeArgs": [...]}}).
type Runtime struct {
	// Path is the runtime binary, a path or a name looked up in PATH.
	Path string `json:"path"`
	// Args are extra arguments given to the runtime.
	Args []string `json:"runtimeArgs,omitempty"`
}

// Ulimit is a default rlimit (daemon.json "default-ulimits": {"nofile":
// {"Name": "nofile", "Soft": 1024, "Hard": 2048}}, as dockerd).
type Ulimit struct {
	// Name is the limit's name without RLIMIT_, lowercase: nofile, nproc, …
	Name string
	// Soft and Hard are the limits, in the limit's unit.
	Soft int64
	Hard int64
}

// AddressPool is a pool networks' subnets are allocated from
// (daemon.json "default-address-pools": [{"base": "172.30.0.0/16", "size":
// 24}]).
type AddressPool struct {
	// Base is the pool's range.
	Base netip.Prefix `json:"base"`
	// Size is the prefix length of each subnet taken from Base.
	Size int `json:"size"`
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Hosts = slices.Clone(c.Hosts)
	n.StorageOpts = slices.Clone(c.StorageOpts)
	n.DefaultAddressPools = slices.Clone(c.DefaultAddressPools)
	n.DNS = slices.Clone(c.DNS)
	n.DNSSearch = slices.Clone(c.DNSSearch)
	n.DNSOpts = slices.Clone(c.DNSOpts)
	n.ExecOpts = slices.Clone(c.ExecOpts)
	n.RegistryMirrors = slices.Clone(c.RegistryMirrors)
	n.InsecureRegistries = slices.Clone(c.InsecureRegistries)
	n.Labels = slices.Clone(c.Labels)
	n.LogOpts = maps.Clone(c.LogOpts)
	n.DefaultUlimits = maps.Clone(c.DefaultUlimits)
	if c.Runtimes != nil {
		n.Runtimes = make(map[string]Runtime, len(c.Runtimes))
		for k, r := range c.Runtimes {
			r.Args = slices.Clone(r.Args)
			n.Runtimes[k] = r
		}
	}
	return &n
}

// CgroupDriver returns the cgroup driver the exec-opt native.cgroupdriver
// selects (the last one given), cgroupfs by default. Keys are matched
// case-insensitively, as dockerd does. Verify refuses drivers other than
// cgroupfs and systemd.
func (c *Config) CgroupDriver() string {
	driver := CgroupDriverCgroupfs
	for _, o := range c.ExecOpts {
		k, v, ok := strings.Cut(o, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "native.cgroupdriver") {
			driver = strings.TrimSpace(v)
		}
	}
	return driver
}

// StorageDriverName returns the graph driver asked for: DOCKER_DRIVER
// when set, as in dockerd, else StorageDriver; empty lets the storage
// stage choose.
func (c *Config) StorageDriverName() string {
	if c.StorageDriverEnv != "" {
		return c.StorageDriverEnv
	}
	return c.StorageDriver
}

// BridgeDisabled reports whether the default bridge is turned off
// (--bridge=none).
func (c *Config) BridgeDisabled() bool { return c.Bridge == BridgeNone }

// ZapLevel returns the daemon's log level as zap's: debug when Debug is
// set, else LogLevel (trace maps to debug, the lowest zap has; unknown or
// empty to info).
func (c *Config) ZapLevel() zapcore.Level {
	if c.Debug {
		return zapcore.DebugLevel
	}
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug":
		return zapcore.DebugLevel
	case "warn":
		return zapcore.WarnLevel
	case "error":
		return zapcore.ErrorLevel
	case "fatal":
		return zapcore.FatalLevel
	case "panic":
		return zapcore.PanicLevel
	default:
		return zapcore.InfoLevel
	}
}

// FlagsLogLevel returns the log level the command line asks for (-D,
// -l/--log-level), for the logger cmd builds before stage 2.1 runs; New
// then sets the level the whole configuration gives. An unknown level is
// an error worded as Validate words it.
func FlagsLogLevel(f *Flags) (zapcore.Level, error) {
	c := Config{Debug: f.Options.Debug, LogLevel: f.Options.LogLevel}
	if !validLogLevel(c.LogLevel) {
		return zapcore.InfoLevel, fmt.Errorf("invalid logging level: %s", c.LogLevel)
	}
	return c.ZapLevel(), nil
}

// validLogLevel reports whether s is one of dockerd's log levels (empty
// meaning the default).
func validLogLevel(s string) bool {
	switch strings.ToLower(s) {
	case "", "trace", "debug", "info", "warn", "error", "fatal", "panic":
		return true
	}
	return false
}
