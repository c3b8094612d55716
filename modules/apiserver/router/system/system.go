package system

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/version"
)

// Params are the inputs of stage 5 system.
type Params struct {
	fx.In

	Config *config.Config
	Logger *zap.Logger
	// Live, when the reload stage runs, gives the reloadable options'
	// current values (labels, debug, live-restore, registry mirrors).
	Live *config.Live `optional:"true"`
	// Level is the daemon's log level: /info's Debug.
	Level zap.AtomicLevel `optional:"true"`

	// Host facts of modules/host: the engine ID (3.16), AppArmor (3.9),
	// SELinux (3.12), the user namespace mapping (3.5) and the effective
	// data root (3.7).
	EngineID host.EngineID `optional:"true"`
	AppArmor host.AppArmor `optional:"true"`
	SELinux  host.SELinux  `optional:"true"`
	Identity host.Identity `optional:"true"`
	DataRoot host.DataRoot `optional:"true"`
	// Events is the event bus (3.18) behind GET /events; without it the
	// stream has no events.
	Events *events.Bus `optional:"true"`

	Containers Containers  `optional:"true"`
	Init       Init        `optional:"true"`
	Images     Images      `optional:"true"`
	Storage    Storage     `optional:"true"`
	Plugins    []PluginSet `group:"plugins"`
	DiskUsage  []DiskUsage `group:"diskusage"`
}

// Router serves the system routes.
type Router struct {
	p      Params
	log    *zap.Logger
	facts  hostFacts
	minAPI string
	events Events
	// runtimeVersion is the linked runtime library's version.
	runtimeVersion string
	// listeners counts the /events streams being served: /info's
	// NEventsListener.
	listeners atomic.Int64
}

// New is stage 5 system: it reads the host facts once and returns the
// system routes.
func New(p Params) (apiserver.Routes, error) {
	rt, err := newRouter(p, defaultFactPaths)
	if err != nil {
		return apiserver.Routes{}, err
	}
	return apiserver.Routes{Routes: rt.Routes()}, nil
}

func newRouter(p Params, paths factPaths) (*Router, error) {
	minAPI, err := apiserver.MinVersion(p.Config)
	if err != nil {
		return nil, err
	}
	s := &Router{
		p: p, log: p.Logger.With(zap.String("module", "apiserver")),
		facts: readHostFacts(paths), minAPI: minAPI,
		runtimeVersion: libraryVersion(runtimeLibrary),
	}
	if p.Events != nil {
		s.events = p.Events
	}
	return s, nil
}

// Routes returns the system routes.
func (s *Router) Routes() []apiserver.Route {
	return []apiserver.Route{
		{Method: http.MethodGet, Path: "/_ping", Handler: s.ping},
		{Method: http.MethodHead, Path: "/_ping", Handler: s.ping},
		{Method: http.MethodGet, Path: "/version", Handler: s.version},
		{Method: http.MethodGet, Path: "/info", Handler: s.info},
		{Method: http.MethodGet, Path: "/events", Handler: s.getEvents},
		{Method: http.MethodGet, Path: "/system/df", Handler: s.diskUsage},
	}
}

// current returns the configuration in force (after reloads).
func (s *Router) current() *config.Config {
	if s.p.Live != nil {
		return s.p.Live.Current()
	}
	return s.p.Config
}

// ping answers GET and HEAD /_ping as dockerd: "OK", no caching, the
// builder version (1: the classic builder; wharfd has no BuildKit) and
// the swarm state (always inactive).
func (s *Router) ping(_ context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Add("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Add("Pragma", "no-cache")
	h.Set("Builder-Version", string(build.BuilderV1))
	h.Set("Swarm", string(swarm.LocalNodeStateInactive))
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return nil
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("OK"))
	return err
}

// runtimeLibrary is the module path of the container runtime library
// whose version /version reports.
const runtimeLibrary = "github.com/opencontainers/runc"

// libraryVersion returns the version of the module path linked into the
// binary, "" when unknown.
func libraryVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

// versionResponse builds GET /version's body.
func (s *Router) versionResponse() system.VersionResponse {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "wharfd"},
		Version:       version.Version,
		APIVersion:    config.MaxAPIVersion,
		MinAPIVersion: s.minAPI,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GitCommit:     version.GitCommit,
		GoVersion:     runtime.Version(),
		KernelVersion: s.facts.kernel,
		BuildTime:     version.BuildTime,
	}
	v.Components = []system.ComponentVersion{{
		Name:    "Engine",
		Version: v.Version,
		Details: map[string]string{
			"ApiVersion":    v.APIVersion,
			"MinAPIVersion": v.MinAPIVersion,
			"GitCommit":     v.GitCommit,
			"GoVersion":     v.GoVersion,
			"Os":            v.Os,
			"Arch":          v.Arch,
			"KernelVersion": v.KernelVersion,
			"BuildTime":     v.BuildTime,
			"Experimental":  "false",
		},
	}}
	if lib := s.runtimeVersion; lib != "" {
		v.Components = append(v.Components, system.ComponentVersion{
			Name: "libcontainer", Version: lib,
			Details: map[string]string{"Module": runtimeLibrary},
		})
	}
	return v
}

// version answers GET /version.
func (s *Router) version(_ context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	return apiserver.WriteJSON(w, http.StatusOK, s.versionResponse())
}

// info answers GET /info.
func (s *Router) info(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	info := s.systemInfo()
	v := apiserver.APIVersion(ctx)
	var body any = info
	if apiserver.VersionLess(v, "1.44") {
		for k, rt := range info.Runtimes {
			info.Runtimes[k] = system.RuntimeWithStatus{Runtime: rt.Runtime}
		}
	}
	if apiserver.VersionLess(v, "1.46") {
		info.Containerd = nil
	}
	if apiserver.VersionLess(v, "1.49") {
		info.FirewallBackend = nil
	}
	if apiserver.VersionLess(v, "1.50") {
		info.DiscoveredDevices = nil
		// Fields that API 1.50 dropped, always false, still sent to
		// older clients as dockerd does.
		body = struct {
			*system.Info
			BridgeNfIptables  bool
			BridgeNfIP6tables bool `json:"BridgeNfIp6tables"`
		}{Info: info}
	}
	return apiserver.WriteJSON(w, http.StatusOK, body)
}

// systemInfo assembles /info from the host facts, the configuration and
// what the modules provide.
func (s *Router) systemInfo() *system.Info {
	cfg := s.current()
	f := s.facts
	hostname, _ := os.Hostname()
	info := &system.Info{
		Name:               hostname,
		NCPU:               f.ncpu,
		MemTotal:           f.memTotal,
		KernelVersion:      f.kernel,
		OperatingSystem:    f.osName,
		OSVersion:          f.osVersion,
		OSType:             runtime.GOOS,
		Architecture:       f.arch,
		MemoryLimit:        f.cgroup.memory,
		SwapLimit:          f.cgroup.swap,
		CPUCfsPeriod:       f.cgroup.cpuCfs,
		CPUCfsQuota:        f.cgroup.cpuCfs,
		CPUShares:          f.cgroup.cpuShares,
		CPUSet:             f.cgroup.cpuset,
		PidsLimit:          f.cgroup.pids,
		OomKillDisable:     f.cgroup.oomKillDisable,
		IPv4Forwarding:     ipv4Forwarding(),
		CgroupDriver:       cfg.CgroupDriver(),
		CgroupVersion:      "1",
		Debug:              cfg.Debug || (s.p.Level != zap.AtomicLevel{} && s.p.Level.Enabled(zapcore.DebugLevel)),
		NFd:                openFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      cfg.LogDriver,
		NEventsListener:    int(s.listeners.Load()),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     registryConfig(cfg),
		ID:                 s.p.EngineID.ID,
		DockerRootDir:      cfg.DataRoot,
		Labels:             slices.Clone(cfg.Labels),
		ServerVersion:      version.Version,
		Runtimes:           runtimes(cfg),
		DefaultRuntime:     cfg.DefaultRuntime,
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		LiveRestoreEnabled: cfg.LiveRestore,
		SecurityOptions:    s.securityOptions(),
		RuncCommit:         system.Commit{ID: s.runtimeVersion},
		CDISpecDirs:        []string{},
		Plugins:            s.plugins(),
		DriverStatus:       [][2]string{},
	}
	if f.cgroupV2 {
		info.CgroupVersion = "2"
	}
	if s.p.DataRoot.Path != "" {
		info.DockerRootDir = s.p.DataRoot.Path
	}
	if info.Labels == nil {
		info.Labels = []string{}
	}
	if info.DefaultRuntime == "" {
		info.DefaultRuntime = config.DefaultRuntime
	}
	for _, pool := range cfg.DefaultAddressPools {
		info.DefaultAddressPools = append(info.DefaultAddressPools, system.NetworkAddressPool{Base: pool.Base, Size: pool.Size})
	}
	if c := s.p.Containers; c != nil {
		info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = c.ContainerCounts()
		info.Containers = info.ContainersRunning + info.ContainersPaused + info.ContainersStopped
	}
	if im := s.p.Images; im != nil {
		info.Images = im.ImageCount()
	}
	if in := s.p.Init; in != nil {
		info.InitBinary, info.InitCommit.ID = in.InitBinary()
	}
	if st := s.p.Storage; st != nil {
		info.Driver, info.DriverStatus = st.DriverStatus()
	}
	info.Warnings = s.warnings(cfg, info)
	return info
}

// securityOptions lists the security features in force, in dockerd's
// order and form: name=apparmor when stage 3.9 loaded the profile;
// name=seccomp,profile=builtin when the kernel has seccomp; name=selinux
// when stage 3.12 turned labelling on; name=userns when stage 3.5 maps
// users; name=cgroupns on cgroup v2 (private cgroup namespaces).
func (s *Router) securityOptions() []string {
	var opts []string
	if s.p.AppArmor.Enabled() {
		opts = append(opts, "name=apparmor")
	}
	if s.facts.seccomp {
		opts = append(opts, "name=seccomp,profile=builtin")
	}
	if s.p.SELinux.Enabled {
		opts = append(opts, "name=selinux")
	}
	if s.p.Identity.Enabled() {
		opts = append(opts, "name=userns")
	}
	if s.facts.cgroupV2 {
		opts = append(opts, "name=cgroupns")
	}
	if opts == nil {
		opts = []string{}
	}
	return opts
}

// plugins gathers the driver names the modules contributed.
func (s *Router) plugins() system.PluginsInfo {
	var p system.PluginsInfo
	for _, set := range s.p.Plugins {
		names := slices.Clone(set.Names)
		switch set.Kind {
		case "Volume":
			p.Volume = append(p.Volume, names...)
		case "Network":
			p.Network = append(p.Network, names...)
		case "Authorization":
			p.Authorization = append(p.Authorization, names...)
		case "Log":
			p.Log = append(p.Log, names...)
		}
	}
	for _, l := range []*[]string{&p.Volume, &p.Network, &p.Authorization, &p.Log} {
		sort.Strings(*l)
	}
	return p
}

// warnings are /info's warnings, as dockerd words them.
func (s *Router) warnings(cfg *config.Config, info *system.Info) []string {
	w := []string{}
	if !cfg.TLS && !cfg.TLSVerify {
		for _, h := range cfg.Hosts {
			if addr, ok := strings.CutPrefix(h, "tcp://"); ok {
				w = append(w, fmt.Sprintf("WARNING: API is accessible on http://%s without encryption.\n         Access to the remote API is equivalent to root access on the host. Refer\n         to the 'Docker daemon attack surface' section in the documentation for\n         more information: https://docs.docker.com/go/attack-surface/", addr))
			}
		}
	}
	if !info.MemoryLimit {
		w = append(w, "WARNING: No memory limit support")
	}
	if !info.SwapLimit {
		w = append(w, "WARNING: No swap limit support")
	}
	if !info.CPUCfsQuota {
		w = append(w, "WARNING: No cpu cfs quota support")
	}
	if !info.CPUShares {
		w = append(w, "WARNING: No cpu shares support")
	}
	if !info.IPv4Forwarding {
		w = append(w, "WARNING: IPv4 forwarding is disabled")
	}
	return w
}

// runtimes lists the OCI runtimes: the built-in one (libcontainer, named
// runc) and the configured ones.
func runtimes(cfg *config.Config) map[string]system.RuntimeWithStatus {
	out := map[string]system.RuntimeWithStatus{
		config.DefaultRuntime: {Runtime: system.Runtime{Path: config.DefaultRuntime}},
	}
	for name, rt := range cfg.Runtimes {
		out[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: rt.Path, Args: slices.Clone(rt.Args)}}
	}
	return out
}

// registryConfig is /info's RegistryConfig from the configuration, as
// dockerd's registry service reports it: loopback always insecure, the
// insecure CIDRs and hosts, Docker Hub with its mirrors.
func registryConfig(cfg *config.Config) *registry.ServiceConfig {
	mirrors := make([]string, 0, len(cfg.RegistryMirrors))
	for _, m := range cfg.RegistryMirrors {
		if !strings.HasSuffix(m, "/") {
			m += "/"
		}
		mirrors = append(mirrors, m)
	}
	rc := &registry.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("127.0.0.0/8")},
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: mirrors, Secure: true, Official: true},
		},
		Mirrors: mirrors,
	}
	for _, r := range cfg.InsecureRegistries {
		if p, err := netip.ParsePrefix(r); err == nil {
			if !slices.Contains(rc.InsecureRegistryCIDRs, p.Masked()) {
				rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p.Masked())
			}
			continue
		}
		rc.IndexConfigs[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}, Secure: false}
	}
	return rc
}

// legacyDiskUsage is GET /system/df for API < 1.52: the per-type
// summaries plus the item lists that 1.52 moved into them, always
// present (empty when no module provides them), as dockerd sends them.
type legacyDiskUsage struct {
	system.DiskUsage
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsage answers GET /system/df from the modules' shares; ?type=
// (API 1.42+) selects the parts, ?verbose (1.52+) the item lists.
func (s *Router) diskUsage(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	v := apiserver.APIVersion(ctx)
	want := map[system.DiskUsageObject]bool{}
	if types, ok := r.Form["type"]; ok && !apiserver.VersionLess(v, "1.42") {
		for _, t := range types {
			switch o := system.DiskUsageObject(t); o {
			case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
				want[o] = true
			default:
				return invalidParam(fmt.Errorf("unknown object type: %s", t))
			}
		}
	} else {
		for _, o := range []system.DiskUsageObject{system.ContainerObject, system.ImageObject, system.VolumeObject} {
			want[o] = true
		}
	}
	legacy := apiserver.VersionLess(v, "1.52")
	verbose := legacy
	if !legacy && r.Form.Get("verbose") != "" {
		verbose = apiserver.BoolValue(r, "verbose")
	}
	var du system.DiskUsage
	if want[system.ImageObject] {
		du.ImageUsage = &image.DiskUsage{}
	}
	if want[system.ContainerObject] {
		du.ContainerUsage = &container.DiskUsage{}
	}
	if want[system.VolumeObject] {
		du.VolumeUsage = &volume.DiskUsage{}
	}
	for _, m := range s.p.DiskUsage {
		u, err := m.DiskUsage(ctx, verbose)
		if err != nil {
			return err
		}
		if u.Images != nil && du.ImageUsage != nil {
			c := *u.Images
			du.ImageUsage = &c
		}
		if u.Containers != nil && du.ContainerUsage != nil {
			c := *u.Containers
			du.ContainerUsage = &c
		}
		if u.Volumes != nil && du.VolumeUsage != nil {
			c := *u.Volumes
			du.VolumeUsage = &c
		}
	}
	if !legacy {
		return apiserver.WriteJSON(w, http.StatusOK, du)
	}
	out := legacyDiskUsage{
		DiskUsage:  du,
		Images:     []image.Summary{},
		Containers: []container.Summary{},
		Volumes:    []volume.Volume{},
		BuildCache: []build.CacheRecord{},
	}
	if du.ImageUsage != nil {
		out.LayersSize = du.ImageUsage.TotalSize
		out.Images = append(out.Images, du.ImageUsage.Items...)
		du.ImageUsage.Items = nil
	}
	if du.ContainerUsage != nil {
		out.Containers = append(out.Containers, du.ContainerUsage.Items...)
		du.ContainerUsage.Items = nil
	}
	if du.VolumeUsage != nil {
		out.Volumes = append(out.Volumes, du.VolumeUsage.Items...)
		du.VolumeUsage.Items = nil
	}
	return apiserver.WriteJSON(w, http.StatusOK, out)
}

// invalidParam classifies err as InvalidArgument (400).
func invalidParam(err error) error { return invalidError{err} }

type invalidError struct{ error }

func (e invalidError) Unwrap() error { return e.error }

// InvalidParameter marks the error as InvalidArgument for errdefs.
func (invalidError) InvalidParameter() {}
