package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// clearEnv unsets the environment variables Load reads, so the host's do
// not leak into a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"DOCKER_DRIVER", "DOCKER_TMPDIR", "DOCKER_MIN_API_VERSION"} {
		t.Setenv(k, "")
	}
}

// load writes file as daemon.json in a temporary directory and runs what
// `wharfd --validate` runs: ParseFlags with --config-file pointing there,
// Load, Verify. "FILE" in the file's text and in args stands for the
// daemon.json path. For noFile, no daemon.json exists at what Load takes
// for the default path; for missingFile, --config-file names a file that
// does not exist.
func load(t *testing.T, file string, args ...string) (*Config, string, error) {
	t.Helper()
	clearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	var all []string
	switch file {
	case noFile:
	case missingFile:
		all = append(all, "--config-file", path)
	default:
		all = append(all, "--config-file", path)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(file, "FILE", path)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	all = append(all, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "wharfd.pid"))
	for _, a := range args {
		all = append(all, strings.ReplaceAll(a, "FILE", path))
	}
	f, err := ParseFlags(all)
	if err != nil {
		t.Fatalf("ParseFlags(%q): %v", all, err)
	}
	if file == noFile {
		// Stands in for /etc/wharfd/daemon.json without touching /etc:
		// --config-file was not given, so the path is the default one as
		// far as Load can tell.
		f.Options.ConfigFile = path
	}
	c, err := Load(f)
	if err == nil {
		_, err = Verify(c)
	}
	return c, path, err
}

const (
	noFile      = "\x00no file"
	missingFile = "\x00missing file"
)

func TestLoad(t *testing.T) {
	const prefix = "unable to configure the daemon with file FILE: "
	tests := []struct {
		name      string
		giveFile  string
		giveArgs  []string
		wantErr   string // exact; FILE stands for the daemon.json path
		wantCheck func(t *testing.T, c *Config)
	}{
		// The cases of issue 2.
		{
			name:     "hosts in file and as a flag",
			giveFile: `{"hosts":["tcp://127.0.0.1:2376"]}`,
			giveArgs: []string{"-H", "fd://"},
			wantErr:  prefix + "the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [fd://], from file: [tcp://127.0.0.1:2376])",
		},
		{
			name:     "trailing comma",
			giveFile: `{"log-driver":"journald","live-restore":true,}`,
			wantErr:  prefix + "invalid JSON at line 1, column 46: invalid character '}' looking for beginning of object key string",
		},
		{
			name:     "boolean as a string",
			giveFile: `{"ipv6":"true"}`,
			wantErr:  prefix + `ipv6: want a boolean, got string "true"`,
		},
		{
			name:     "integer as a string",
			giveFile: `{"mtu":"1500"}`,
			wantErr:  prefix + `mtu: want an integer, got string "1500"`,
		},
		{
			name:     "negative mtu",
			giveFile: `{"mtu":-1}`,
			wantErr:  prefix + "invalid default MTU: -1",
		},
		{
			name:     "option dockerd removed",
			giveFile: `{"disable-legacy-registry":true}`,
			wantErr:  prefix + "the following directives don't match any configuration option: disable-legacy-registry",
		},
		{
			name:     "log-opts value not a string",
			giveFile: `{"log-driver":"json-file","log-opts":{"max-size":"10m","max-file":3}}`,
			wantErr:  prefix + "log-opts: max-file: want a string, got number 3",
		},
		{
			name:     "log-opts as a list",
			giveFile: `{"log-opts":["env=FOO"]}`,
			wantErr:  prefix + `log-opts: want an object, got array ["env=FOO"]`,
		},
		{
			name:     "bridge with bip",
			giveFile: `{"bridge":"br-test","bip":"192.0.2.1/24"}`,
			wantErr:  "You specified -b & --bip, mutually exclusive options. Please specify only one",
		},
		{
			name:     "icc off without iptables",
			giveFile: `{"icc":false,"iptables":false}`,
			wantErr:  "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true",
		},
		{
			name:     "systemd cgroup parent not a slice",
			giveFile: `{"exec-opts":["native.cgroupdriver=systemd"],"cgroup-parent":"/mygroup"}`,
			wantErr:  `cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`,
		},
		{
			name:     "runtime named runc",
			giveFile: `{"runtimes":{"runc":{"path":"runc"}}}`,
			wantErr:  prefix + "runtime name 'runc' is reserved",
		},
		{
			name:     "missing file given with --config-file",
			giveFile: missingFile,
			wantErr:  prefix + "open FILE: no such file or directory",
		},

		// File semantics.
		{
			name:     "conflict whatever the values",
			giveFile: `{"debug":true,"mtu":1500}`,
			giveArgs: []string{"-D", "--mtu=1500"},
			wantErr:  prefix + "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: true), mtu: (from flag: 1500, from file: 1500)",
		},
		{
			name:     "conflict through a named option",
			giveFile: `{"labels":["a=b"]}`,
			giveArgs: []string{"--label", "a=b"},
			wantErr:  prefix + "the following directives are specified both as a flag and in the configuration file: labels: (from flag: [a=b], from file: [a=b])",
		},
		{
			name:     "unknown keys all named",
			giveFile: `{"zeta":1,"alpha":true,"debug":true}`,
			wantErr:  prefix + "the following directives don't match any configuration option: alpha, zeta",
		},
		{
			name:     "trailing data",
			giveFile: `{"debug":true} {"debug":false}`,
			wantErr:  prefix + "invalid JSON at line 1, column 16: invalid character '{' after top-level value",
		},
		{
			name:     "not an object",
			giveFile: `["debug"]`,
			wantErr:  prefix + "want a JSON object, got array",
		},
		{
			name:     "unknown runtime field",
			giveFile: `{"runtimes":{"crun":{"path":"crun","runtimeType":"io.containerd.runc.v2"}}}`,
			wantErr:  prefix + `runtimes: crun: unknown field "runtimeType"`,
		},
		{
			name:     "runtimes merge with --add-runtime",
			giveFile: `{"runtimes":{"crun":{"path":"/usr/bin/crun","runtimeArgs":["--debug"]}}}`,
			giveArgs: []string{"--add-runtime", "youki=/usr/bin/youki", "--default-runtime", "crun"},
			wantCheck: func(t *testing.T, c *Config) {
				if len(c.Runtimes) != 2 || c.Runtimes["youki"].Path != "/usr/bin/youki" || c.Runtimes["crun"].Args[0] != "--debug" || c.DefaultRuntime != "crun" {
					t.Errorf("Runtimes = %+v, DefaultRuntime = %q", c.Runtimes, c.DefaultRuntime)
				}
			},
		},
		{
			name:     "runtime in both",
			giveFile: `{"runtimes":{"crun":{"path":"/usr/bin/crun"}}}`,
			giveArgs: []string{"--add-runtime", "crun=/opt/crun"},
			wantErr:  prefix + `runtimes: runtime "crun" is given both with --add-runtime and in the file`,
		},
		{
			name:     "file values over defaults, false included",
			giveFile: "\xef\xbb\xbf" + `{"icc":false,"iptables":true,"ip-masq":false,"mtu":9000,"shutdown-timeout":40,"log-opts":{"max-size":"10m"},"default-ulimits":{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}},"default-address-pools":[{"base":"10.10.0.0/16","size":24}],"min-api-version":"1.44","tls":false}`,
			giveArgs: []string{"--registry-mirror", "https://mirror.example.com"},
			wantCheck: func(t *testing.T, c *Config) {
				if c.ICC || !c.IPTables || c.IPMasq || !c.IPForward || c.MTU != 9000 || c.ShutdownTimeout != 40*time.Second {
					t.Errorf("Config = %+v", c)
				}
				if c.LogOpts["max-size"] != "10m" || c.DefaultUlimits["nofile"].Hard != 2048 || c.DefaultAddressPools[0].Size != 24 {
					t.Errorf("Config = %+v", c)
				}
				if c.MinAPIVersion != "1.44" || !c.TLSExplicit || c.TLS {
					t.Errorf("MinAPIVersion = %q, TLS = %v, TLSExplicit = %v", c.MinAPIVersion, c.TLS, c.TLSExplicit)
				}
				if !slices.Equal(c.RegistryMirrors, []string{"https://mirror.example.com"}) {
					t.Errorf("RegistryMirrors = %q", c.RegistryMirrors)
				}
			},
		},
		{
			name:     "init-path in the file",
			giveFile: `{"init-path":"/opt/tini/tini-static"}`,
			wantCheck: func(t *testing.T, c *Config) {
				if c.InitPath != "/opt/tini/tini-static" {
					t.Errorf("InitPath = %q", c.InitPath)
				}
			},
		},
		{
			name:     "init-path as a flag and in the file",
			giveFile: `{"init-path":"/opt/a"}`,
			giveArgs: []string{"--init-path", "/opt/b"},
			wantErr:  prefix + "the following directives are specified both as a flag and in the configuration file: init-path: (from flag: /opt/b, from file: /opt/a)",
		},
		{
			name:     "nested objects flattened one level",
			giveFile: `{"logging":{"debug":true,"log-level":"warn"}}`,
			wantCheck: func(t *testing.T, c *Config) {
				if !c.Debug || c.LogLevel != "warn" {
					t.Errorf("Debug = %v, LogLevel = %q", c.Debug, c.LogLevel)
				}
			},
		},
		{
			name:     "no file at the default path",
			giveFile: noFile,
			wantCheck: func(t *testing.T, c *Config) {
				if c.LogDriver != DefaultLogDriver || c.MaxConcurrentDownloads != DefaultMaxConcurrentDownloads {
					t.Errorf("Config = %+v", c)
				}
			},
		},
		{
			name:     "empty file",
			giveFile: " \n",
			wantCheck: func(t *testing.T, c *Config) {
				if c.MTU != 0 || c.LogDriver != DefaultLogDriver {
					t.Errorf("Config = %+v", c)
				}
			},
		},
		{
			name:     "defaults and derived values",
			giveFile: `{}`,
			wantCheck: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Hosts, []string{DefaultHost}) || c.MinAPIVersion != DefaultMinAPIVersion || c.CgroupDriver() != CgroupDriverCgroupfs || c.TLSExplicit {
					t.Errorf("Hosts = %q, MinAPIVersion = %q, CgroupDriver = %q, TLSExplicit = %v", c.Hosts, c.MinAPIVersion, c.CgroupDriver(), c.TLSExplicit)
				}
			},
		},
		{
			name:     "hosts normalised",
			giveFile: `{"hosts":["unix://", "tcp://:2375", "192.0.2.1", "fd://"]}`,
			wantCheck: func(t *testing.T, c *Config) {
				want := []string{DefaultHost, "tcp://127.0.0.1:2375", "tcp://192.0.2.1:2375", "fd://"}
				if !slices.Equal(c.Hosts, want) {
					t.Errorf("Hosts = %q, want %q", c.Hosts, want)
				}
			},
		},
		{
			name:     "tls given as false on the command line",
			giveFile: noFile,
			giveArgs: []string{"--tls=false"},
			wantCheck: func(t *testing.T, c *Config) {
				if c.TLS || !c.TLSExplicit {
					t.Errorf("TLS = %v, TLSExplicit = %v", c.TLS, c.TLSExplicit)
				}
			},
		},
		{
			name:     "group named on the command line, even the default",
			giveFile: noFile,
			giveArgs: []string{"-G", DefaultGroup},
			wantCheck: func(t *testing.T, c *Config) {
				if c.Group != DefaultGroup || !c.GroupExplicit {
					t.Errorf("Group = %q, GroupExplicit = %v", c.Group, c.GroupExplicit)
				}
			},
		},
		{
			name:     "group named in the file",
			giveFile: `{"group":"wheel"}`,
			wantCheck: func(t *testing.T, c *Config) {
				if c.Group != "wheel" || !c.GroupExplicit {
					t.Errorf("Group = %q, GroupExplicit = %v", c.Group, c.GroupExplicit)
				}
			},
		},
		{
			name:     "group not given",
			giveFile: `{}`,
			wantCheck: func(t *testing.T, c *Config) {
				if c.Group != DefaultGroup || c.GroupExplicit {
					t.Errorf("Group = %q, GroupExplicit = %v", c.Group, c.GroupExplicit)
				}
			},
		},
		{
			name:     "systemd with a slice",
			giveFile: `{"exec-opts":["native.cgroupdriver=systemd"],"cgroup-parent":"wharfd.slice"}`,
			wantCheck: func(t *testing.T, c *Config) {
				if c.CgroupDriver() != CgroupDriverSystemd {
					t.Errorf("CgroupDriver = %q", c.CgroupDriver())
				}
			},
		},

		// Validation.
		{name: "bad log level", giveFile: `{"log-level":"verbose"}`, wantErr: prefix + "invalid logging level: verbose"},
		{name: "bad log format", giveFile: `{"log-format":"xml"}`, wantErr: prefix + "invalid log format: xml"},
		{name: "negative downloads", giveFile: `{"max-concurrent-downloads":-2}`, wantErr: prefix + "invalid max concurrent downloads: -2"},
		{name: "negative uploads", giveArgs: []string{"--max-concurrent-uploads=-1"}, giveFile: `{}`, wantErr: prefix + "invalid max concurrent uploads: -1"},
		{name: "negative attempts", giveFile: `{"max-download-attempts":-3}`, wantErr: prefix + "invalid max download attempts: -3"},
		{name: "exec-opt not key=value", giveFile: `{"exec-opts":["systemd"]}`, wantErr: prefix + "invalid exec-opt (systemd): must be formatted 'opt=value'"},
		{name: "unknown exec-opt", giveFile: `{"exec-opts":["native.umask=normal"]}`, wantErr: prefix + "invalid exec-opt (native.umask=normal): unknown option: 'native.umask'"},
		{name: "unsupported cgroup driver", giveFile: `{"exec-opts":["native.cgroupdriver=cgroupv3"]}`, wantErr: "native.cgroupdriver option cgroupv3 not supported"},
		{name: "mirror without scheme", giveFile: `{"registry-mirrors":["mirror.example.com"]}`, wantErr: prefix + `invalid mirror: no scheme specified for "mirror.example.com": must use either 'https://' or 'http://'`},
		{name: "mirror with credentials", giveFile: `{"registry-mirrors":["https://user:secret@mirror.example.com"]}`, wantErr: prefix + `invalid mirror: username/password not allowed in URI "https://user:xxxxx@mirror.example.com"`},
		{name: "mirror with another scheme", giveFile: `{"registry-mirrors":["ftp://mirror.example.com"]}`, wantErr: prefix + `invalid mirror: unsupported scheme "ftp" in "ftp://mirror.example.com": must use either 'https://' or 'http://'`},
		{name: "insecure registry with scheme", giveFile: `{"insecure-registries":["http://r.example.com:5000"]}`, wantErr: prefix + "insecure registry http://r.example.com:5000 should not contain '://'"},
		{name: "bad address pool", giveFile: `{"default-address-pools":[{"base":"10.10.0.0/16","size":8}]}`, wantErr: prefix + "invalid default address pool base=10.10.0.0/16,size=8: size must be between 16 and 32"},
		{name: "bad address pool base", giveFile: `{"default-address-pools":[{"base":"10.10.0.0","size":24}]}`, wantErr: prefix + `default-address-pools: netip.ParsePrefix("10.10.0.0"): no '/'`},
		{name: "default runtime unknown", giveFile: `{"default-runtime":"kata"}`, wantErr: prefix + "specified default runtime 'kata' does not exist"},
		{name: "conflicting labels", giveFile: `{"labels":["a=1","a=2"]}`, wantErr: prefix + "conflict labels for a=2 and a=1"},
		{name: "bad dns", giveFile: `{"dns":["dns.example.com"]}`, wantErr: prefix + `invalid dns "dns.example.com": not an IP address`},
		{name: "bad host", giveFile: `{"hosts":["udp://0.0.0.0:53"]}`, wantErr: prefix + "invalid bind address (udp://0.0.0.0:53): unsupported proto 'udp'"},
		{name: "bad bip", giveFile: `{"bip":"192.0.2.1"}`, wantErr: prefix + `invalid bip "192.0.2.1": want an IPv4 address and prefix, such as 192.0.2.1/24`},
		{name: "min api version too new", giveFile: `{"min-api-version":"1.99"}`, wantErr: prefix + "invalid min-api-version: maximum supported API version is 1.56: 1.99"},
		{name: "validation without a file is not prefixed", giveFile: noFile, giveArgs: []string{"--mtu=-1"}, wantErr: "invalid default MTU: -1"},
		{name: "tls without certificate", giveFile: `{"tlsverify":true}`, wantErr: prefix + "TLS needs both tlscert and tlskey"},
		{
			name:     "tls certificate missing",
			giveFile: `{"tls":true,"tlscert":"FILE.cert","tlskey":"FILE.key"}`,
			wantErr:  "load TLS key pair (tlscert FILE.cert, tlskey FILE.key): open FILE.cert: no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path, err := load(t, tt.giveFile, tt.giveArgs...)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "FILE", path)
				if err == nil || err.Error() != want {
					t.Fatalf("error = %v\nwant    %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tt.wantCheck != nil {
				tt.wantCheck(t, c)
			}
		})
	}
}

func TestLoadEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("DOCKER_DRIVER", "vfs")
	t.Setenv("DOCKER_TMPDIR", "/scratch")
	t.Setenv("DOCKER_MIN_API_VERSION", "1.41")
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(path, []byte(`{"min-api-version":"1.44"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := ParseFlags([]string{"--config-file", path, "-s", "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.StorageDriverName() != "vfs" || c.StorageDriver != "overlay" || c.DockerTmpdir != "/scratch" || c.MinAPIVersion != "1.41" {
		t.Errorf("StorageDriverName = %q, StorageDriver = %q, DockerTmpdir = %q, MinAPIVersion = %q", c.StorageDriverName(), c.StorageDriver, c.DockerTmpdir, c.MinAPIVersion)
	}
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	tests := []struct {
		name     string
		giveArgs []string
		wantErr  string
		wantHost string
	}{
		{name: "tls", giveArgs: []string{"--tls", "--tlscert", cert, "--tlskey", key, "-H", "tcp://0.0.0.0"}, wantHost: "tcp://0.0.0.0:2376"},
		{name: "tlsverify with ca", giveArgs: []string{"--tlsverify", "--tlscacert", cert, "--tlscert", cert, "--tlskey", key}, wantHost: DefaultHost},
		{name: "tlsverify without ca", giveArgs: []string{"--tlsverify", "--tlscert", cert, "--tlskey", key}, wantErr: "tlsverify needs tlscacert"},
		{name: "ca not pem", giveArgs: []string{"--tlsverify", "--tlscacert", filepath.Join(dir, "junk"), "--tlscert", cert, "--tlskey", key}, wantErr: "holds no PEM certificate"},
		{name: "key swapped", giveArgs: []string{"--tls", "--tlscert", key, "--tlskey", cert}, wantErr: "load TLS key pair"},
	}
	if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := load(t, noFile, tt.giveArgs...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.TLS || c.Hosts[0] != tt.wantHost {
				t.Errorf("TLS = %v, Hosts = %q", c.TLS, c.Hosts)
			}
		})
	}
}

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wharfd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
