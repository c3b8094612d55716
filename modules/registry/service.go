package registry

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/version"
)

// Docker Hub's names, as dockerd uses them.
const (
	// IndexName is Docker Hub's domain in normalised references
	// ("docker.io/library/busybox").
	IndexName = "docker.io"
	// IndexServer is the server address the docker CLI sends for Docker
	// Hub in POST /auth and keeps its credentials under.
	IndexServer = "https://index.docker.io/v1/"
	// IndexHostname is Docker Hub's legacy index host, accepted for
	// docker.io in server addresses.
	IndexHostname = "index.docker.io"
	// DefaultRegistryHost is the host that serves Docker Hub's registry
	// API; go.podman.io/image's docker transport maps docker.io to it.
	DefaultRegistryHost = "registry-1.docker.io"
)

// DefaultInsecureCIDR is the range that is always insecure, as in
// dockerd: registries on the loopback network are reached over plain
// HTTP or without TLS verification.
var DefaultInsecureCIDR = netip.MustParsePrefix("127.0.0.0/8")

// lookupTimeout bounds the name lookup that decides whether a registry
// host lies in an insecure CIDR.
const lookupTimeout = 2 * time.Second

// Options configure a Service.
type Options struct {
	// Mirrors are the Docker Hub mirrors, http:// or https:// URLs
	// (registry-mirrors), tried in order before Docker Hub itself. Only
	// their host[:port] is used.
	Mirrors []string
	// Insecure are the insecure registries, host[:port] or CIDR
	// (insecure-registries); DefaultInsecureCIDR is always added.
	Insecure []string
	// Dir is where the service writes the registries.conf it gives
	// go.podman.io/image (created 0700 if missing). Nothing else is read
	// from there: no credential file, no registries.d.
	Dir string
}

// Mirror is one Docker Hub mirror.
type Mirror struct {
	// URL is the mirror as configured ("http://127.0.0.1:5001").
	URL string
	// Host is its host[:port].
	Host string
	// Insecure reports whether the mirror is reached over plain HTTP or
	// without TLS verification: an http:// URL, or a host that is an
	// insecure registry.
	Insecure bool
}

// Service is the registry service of stage 2.3. It is safe for
// concurrent use; Reload replaces its configuration atomically.
type Service struct {
	dir string
	log *zap.Logger

	mu  sync.RWMutex
	cfg *serviceConfig
}

// serviceConfig is one generation of the configuration.
type serviceConfig struct {
	mirrors       []Mirror
	insecureHosts map[string]bool
	insecureCIDRs []netip.Prefix
	// lookup resolves a host name; nil uses the default resolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Params are what the registry-service stage needs.
type Params struct {
	fx.In
	// Config gives registry-mirrors and insecure-registries at boot.
	Config *config.Config
	// ExecRoot (3.7) holds the generated registries.conf, under
	// "registry".
	ExecRoot  host.ExecRoot
	Log       *zap.Logger
	Lifecycle fx.Lifecycle
	// Live, when wired, reloads mirrors and insecure registries on
	// SIGHUP.
	Live *config.Live `optional:"true"`
}

// New is stage 2.3 registry-service: the service on the boot
// configuration, reloaded with registry-mirrors and insecure-registries
// on each SIGHUP. Its stop hook removes the files it wrote.
func New(p Params) (*Service, error) {
	s, err := NewService(Options{
		Mirrors:  p.Config.RegistryMirrors,
		Insecure: p.Config.InsecureRegistries,
		Dir:      filepath.Join(p.ExecRoot.Path, "registry"),
	}, p.Log.With(zap.String("module", "registry")))
	if err != nil {
		return nil, err
	}
	unsubscribe := func() {}
	if p.Live != nil {
		unsubscribe = p.Live.Subscribe(func(_, cfg *config.Config, changed []string) {
			if !slices.Contains(changed, "registry-mirrors") && !slices.Contains(changed, "insecure-registries") {
				return
			}
			if err := s.Reload(cfg.RegistryMirrors, cfg.InsecureRegistries); err != nil {
				s.log.Error("registry configuration not reloaded", zap.Error(err))
			}
		})
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error {
		unsubscribe()
		return s.Close()
	}})
	return s, nil
}

// NewService returns a service with the options' configuration and
// writes its registries.conf. Malformed mirrors or insecure registries
// are errors (config validation refuses them first in the daemon).
func NewService(o Options, log *zap.Logger) (*Service, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("registry service: no directory given")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry service: %w", err)
	}
	s := &Service{dir: o.Dir, log: log}
	if err := s.Reload(o.Mirrors, o.Insecure); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload replaces the mirrors and insecure registries. On error the
// previous configuration stays.
func (s *Service) Reload(mirrors, insecure []string) error {
	cfg, err := newServiceConfig(mirrors, insecure)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeRegistriesConf(s.confPath(), cfg.mirrors); err != nil {
		return err
	}
	// go.podman.io/image caches parsed registries.conf files by path.
	sysregistriesv2.InvalidateCache()
	if s.cfg != nil {
		cfg.lookup = s.cfg.lookup
	}
	s.cfg = cfg
	s.log.Info("registry configuration", zap.Strings("mirrors", mirrors), zap.Strings("insecure", insecure))
	return nil
}

// Close removes the files the service wrote.
func (s *Service) Close() error {
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("registry service: %w", err)
	}
	return nil
}

func (s *Service) confPath() string { return filepath.Join(s.dir, "registries.conf") }

func (s *Service) config() *serviceConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// Mirrors returns the Docker Hub mirrors in order.
func (s *Service) Mirrors() []Mirror { return slices.Clone(s.config().mirrors) }

// InsecureRegistries returns the insecure registries as `docker info`
// lists them: the CIDRs (127.0.0.0/8 included), then the hosts, sorted.
func (s *Service) InsecureRegistries() []string {
	cfg := s.config()
	var out []string
	for _, p := range cfg.insecureCIDRs {
		out = append(out, p.String())
	}
	hosts := make([]string, 0, len(cfg.insecureHosts))
	for h := range cfg.insecureHosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return append(out, hosts...)
}

// IsInsecure reports whether the registry at host (host[:port], as in a
// reference's domain) is insecure, dockerd's rule: listed by name, or an
// address it resolves to lies in an insecure CIDR. A name that does not
// resolve is secure.
func (s *Service) IsInsecure(ctx context.Context, host string) bool {
	return s.config().isInsecure(ctx, host)
}

// SystemContext returns the go.podman.io/image context for an operation
// on the registry at host (a reference's domain, "docker.io" for Docker
// Hub) with the client's credentials (nil: anonymous). It reads the
// service's registries.conf (the Docker Hub mirrors) and nothing of the
// host's containers configuration: no registries.conf, registries.d or
// credential file, and credentials are never sent to a mirror. TLS
// verification is skipped, and plain HTTP allowed, when host is
// insecure.
func (s *Service) SystemContext(ctx context.Context, host string, auth *AuthConfig) *types.SystemContext {
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    s.confPath(),
		SystemRegistriesConfDirPath: filepath.Join(s.dir, "registries.conf.d"), // never created
		RegistriesDirPath:           filepath.Join(s.dir, "registries.d"),      // never created
		AuthFilePath:                filepath.Join(s.dir, "auth.json"),         // never created
		DockerRegistryUserAgent:     "wharfd/" + version.Version,
		DockerAuthConfig:            &types.DockerAuthConfig{},
	}
	if auth != nil {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken}
		sys.DockerBearerRegistryToken = auth.RegistryToken
	}
	if s.IsInsecure(ctx, host) {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}

// newServiceConfig parses mirrors and insecure registries.
func newServiceConfig(mirrors, insecure []string) (*serviceConfig, error) {
	cfg := &serviceConfig{insecureHosts: map[string]bool{}, insecureCIDRs: []netip.Prefix{DefaultInsecureCIDR}}
	for _, r := range insecure {
		r = strings.TrimSpace(r)
		if strings.Contains(r, "://") {
			return nil, fmt.Errorf("insecure registry %s should not contain '://'", r)
		}
		if p, err := netip.ParsePrefix(r); err == nil {
			p = p.Masked()
			if !slices.Contains(cfg.insecureCIDRs, p) {
				cfg.insecureCIDRs = append(cfg.insecureCIDRs, p)
			}
			continue
		}
		if r == "" || strings.ContainsAny(r, "/ ") {
			return nil, fmt.Errorf("invalid insecure registry %q: want host[:port] or CIDR", r)
		}
		cfg.insecureHosts[strings.ToLower(r)] = true
	}
	for _, m := range mirrors {
		u, err := url.Parse(strings.TrimSpace(m))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("invalid mirror: %q: must be an http:// or https:// URL", m)
		}
		mir := Mirror{URL: m, Host: strings.ToLower(u.Host)}
		mir.Insecure = u.Scheme == "http" || cfg.isInsecure(context.Background(), mir.Host)
		cfg.mirrors = append(cfg.mirrors, mir)
	}
	return cfg, nil
}

// isInsecure is IsInsecure on this configuration.
func (c *serviceConfig) isInsecure(ctx context.Context, host string) bool {
	host = strings.ToLower(host)
	if c.insecureHosts[host] {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(name); err == nil {
		addrs = []netip.Addr{a}
	} else if name != IndexName && name != DefaultRegistryHost && name != IndexHostname {
		lookup := c.lookup
		if lookup == nil {
			lookup = defaultLookup
		}
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		addrs, _ = lookup(ctx, name) // unresolvable: secure, as dockerd
	}
	for _, a := range addrs {
		for _, p := range c.insecureCIDRs {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
	}
	return false
}

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// writeRegistriesConf writes the registries.conf go.podman.io/image reads:
// Docker Hub with its mirrors, nothing else (every other registry is
// reached at its own name).
func writeRegistriesConf(path string, mirrors []Mirror) error {
	var b strings.Builder
	b.WriteString("# Written by wharfd's registry service; rewritten on every reload.\n")
	b.WriteString("unqualified-search-registries = []\n")
	if len(mirrors) > 0 {
		b.WriteString("\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n")
		for _, m := range mirrors {
			fmt.Fprintf(&b, "\n[[registry.mirror]]\nlocation = %s\ninsecure = %t\n", strconv.Quote(m.Host), m.Insecure)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write registries.conf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write registries.conf: %w", err)
	}
	return nil
}
