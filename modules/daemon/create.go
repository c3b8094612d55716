package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/cgroups"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/runtime"
	"github.com/wharfd/wharfd/modules/storage"
)

type containerRestartPolicy = container.RestartPolicy

// ErrEmptyConfig is dockerd's 400 for a create request without a config
// ({}).
var ErrEmptyConfig = errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")

// Network modes the daemon runs containers in.
const (
	NetworkBridge  = "bridge"
	NetworkHost    = "host"
	NetworkNone    = "none"
	NetworkDefault = "default"
)

// Create is POST /containers/create: it checks the request as dockerd
// does, resolves the image, merges its config into the container's,
// reserves the name (a random adjective_surname when name is empty),
// makes the container's writable layer and directory, writes the record
// and logs the "create" event. A failed create leaves nothing behind.
//
// Errors: ErrEmptyConfig; an unknown image storage.NoSuchImageError (404,
// which makes the CLI pull); a name in use a Conflict with dockerd's text;
// bad settings InvalidArgument with dockerd's texts.
func (d *Daemon) Create(ctx context.Context, name string, req container.CreateRequest) (_ container.CreateResponse, retErr error) {
	if req.Config == nil {
		return container.CreateResponse{}, ErrEmptyConfig
	}
	if d.isShuttingDown() {
		return container.CreateResponse{}, errdefs.ErrUnavailable.WithMessage(errShuttingDown.Error())
	}
	cfg := cloneConfig(req.Config)
	host := req.HostConfig
	if host == nil {
		host = &container.HostConfig{}
	} else {
		h := *host
		host = &h
	}
	if err := d.checkHostConfig(host); err != nil {
		return container.CreateResponse{}, err
	}
	parsedMounts, err := checkMounts(host) // -v, --mount, --tmpfs, --volumes-from (mounts.go)
	if err != nil {
		return container.CreateResponse{}, err
	}
	img, err := d.o.Images.Resolve(ctx, cfg.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	mergeImageConfig(cfg, img)
	path, args := command(cfg)
	if path == "" {
		return container.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	if err := checkHealthConfig(cfg.Healthcheck); err != nil {
		return container.CreateResponse{}, err
	}
	warnings, err := d.checkSpec(cfg, host, path, args)
	if err != nil {
		return container.CreateResponse{}, err
	}
	// Networks and endpoint settings, checked (network.go).
	netState, netWarnings, err := d.prepareNetworking(req.Config, cfg, host, req.NetworkingConfig)
	if err != nil {
		return container.CreateResponse{}, err
	}
	warnings = append(warnings, netWarnings...)

	id := newID()
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
		if host.NetworkMode == NetworkHost {
			if h, err := os.Hostname(); err == nil {
				cfg.Hostname = h
			}
		}
	}
	fullName, err := d.reserveName(name, id)
	if err != nil {
		return container.CreateResponse{}, err
	}
	dir := filepath.Join(d.o.Dir, id)
	defer func() {
		if retErr != nil {
			d.deleteLayer(id)
			os.RemoveAll(dir)
			d.mu.Lock()
			delete(d.names, fullName)
			d.mu.Unlock()
		}
	}()
	if err := os.Mkdir(dir, 0o710); err != nil {
		return container.CreateResponse{}, fmt.Errorf("create container dir: %w", err)
	}
	if _, err := d.o.Store.Containers().CreateContainer(id, nil, img.ID, "", layerMetadata, nil); err != nil {
		return container.CreateResponse{}, fmt.Errorf("create container layer: %w", err)
	}
	// Volumes created or held for the container, populated from the
	// image (mounts.go); undone if the create fails.
	mountPoints, undoMounts, err := d.prepareMounts(ctx, id, cfg, host, parsedMounts)
	if err != nil {
		return container.CreateResponse{}, err
	}
	defer func() {
		if retErr != nil {
			undoMounts()
		}
	}()
	rec := Record{
		ID: id, Name: fullName, Created: time.Now().UTC(), Path: path, Args: args,
		Config: cfg, Image: img.FullID(), Driver: d.o.Store.DriverName(), MountPoints: mountPoints,
		Network: netState,
	}
	c := newContainer(dir, rec, host)
	lo, _ := parseLogConfig(host.LogConfig.Type, host.LogConfig.Config)
	c.log = newJSONLog(c.logPath(), lo)
	c.streams = newStreams(cfg.OpenStdin)
	c.mu.Lock()
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return container.CreateResponse{}, err
	}
	d.mu.Lock()
	d.byID[id] = c
	d.mu.Unlock()
	d.event(c, events.ActionCreate, nil)
	if warnings == nil {
		warnings = []string{}
	}
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

// reserveName reserves name (checked) or a random one for id.
func (d *Daemon) reserveName(name, id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name == "" {
		for i := 0; ; i++ {
			n := "/" + randomName(i/10)
			if _, taken := d.names[n]; !taken {
				d.names[n] = id
				return n, nil
			}
		}
	}
	full, err := checkName(name)
	if err != nil {
		return "", err
	}
	if owner, taken := d.names[full]; taken {
		return "", nameConflict(full, owner)
	}
	d.names[full] = id
	return full, nil
}

func nameConflict(name, owner string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, owner))
}

// checkHostConfig validates and normalises a host config as dockerd's
// verifyContainerSettings and adaptContainerSettings.
func (d *Daemon) checkHostConfig(h *container.HostConfig) error {
	rp := &h.RestartPolicy
	switch rp.Name {
	case "":
		rp.Name = container.RestartPolicyDisabled
		fallthrough
	case container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return errdefs.ErrInvalidArgument.WithMessage("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return errdefs.ErrInvalidArgument.WithMessage("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name))
	}
	if h.AutoRemove && rp.Name != container.RestartPolicyDisabled {
		return errdefs.ErrInvalidArgument.WithMessage("can't create 'AutoRemove' container with restart policy")
	}
	for port, bindings := range h.PortBindings {
		if !port.IsValid() {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid port specification: %q", port.String()))
		}
		for _, b := range bindings {
			if b.HostPort == "" {
				continue
			}
			if _, err := network.ParsePortRange(b.HostPort); err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid port specification: %q", b.HostPort))
			}
		}
	}
	if err := d.checkNetworkMode(h); err != nil { // network.go
		return err
	}
	if h.LogConfig.Type == "" {
		h.LogConfig.Type = LogDriverJSONFile
		if d.o.Config != nil && len(d.o.Config.LogOpts) > 0 && h.LogConfig.Config == nil {
			h.LogConfig.Config = maps.Clone(d.o.Config.LogOpts)
		}
	}
	if _, err := parseLogConfig(h.LogConfig.Type, h.LogConfig.Config); err != nil {
		return err
	}
	if h.ShmSize < 0 {
		return errdefs.ErrInvalidArgument.WithMessage("SHM size can not be less than 0")
	}
	if h.ShmSize == 0 {
		h.ShmSize = runtime.DefaultShmSize
	}
	for _, eh := range h.ExtraHosts {
		if _, _, err := parseExtraHost(eh); err != nil {
			return err
		}
	}
	if h.IpcMode == "" {
		h.IpcMode = container.IPCModePrivate
	}
	if h.CgroupnsMode == "" {
		// dockerd's default-cgroupns-mode: private on cgroup v2, host on v1.
		h.CgroupnsMode = container.CgroupnsModeHost
		if cgroups.IsCgroup2UnifiedMode() {
			h.CgroupnsMode = container.CgroupnsModePrivate
		}
	}
	return nil
}

// parseExtraHost parses --add-host host:ip (or host=ip).
func parseExtraHost(s string) (string, string, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" || ip == "" {
		return "", "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad format for add-host: %q", s))
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	return name, ip, nil
}

// checkSpec builds the container's runtime spec against a placeholder
// root, so that bad resources, capabilities or security options are
// refused at create, as dockerd does, and returns the warnings.
func (d *Daemon) checkSpec(cfg *container.Config, host *container.HostConfig, path string, args []string) ([]string, error) {
	rec := Record{Config: cfg, Path: path, Args: args, ID: strings.Repeat("0", 64)}
	o, err := d.specOptions(&rec, host, "/")
	if err != nil {
		return nil, err
	}
	_, warnings, err := runtime.DefaultSpec(o)
	return warnings, err
}

// command returns the path and arguments of the container's process:
// the entrypoint then the command.
func command(cfg *container.Config) (string, []string) {
	argv := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

// mergeImageConfig fills the container's config from the image's, as
// dockerd's merge: environment (the container's values win), command and
// entrypoint, working directory, user, exposed ports, volumes, labels,
// stop signal and health check.
func mergeImageConfig(cfg *container.Config, img *storage.Image) {
	if img.Config == nil {
		return
	}
	ic := img.Config.Config
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if len(cfg.Env) == 0 {
		cfg.Env = slices.Clone(ic.Env)
	} else {
		env := slices.Clone(ic.Env)
		for _, e := range cfg.Env {
			k, _, _ := strings.Cut(e, "=")
			env = slices.DeleteFunc(env, func(x string) bool {
				xk, _, _ := strings.Cut(x, "=")
				return xk == k
			})
			env = append(env, e)
		}
		cfg.Env = env
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(ic.Cmd)
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(ic.Entrypoint)
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if len(ic.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range ic.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if len(ic.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		maps.Copy(cfg.Volumes, ic.Volumes)
	}
	if len(ic.Labels) > 0 {
		labels := maps.Clone(ic.Labels)
		maps.Copy(labels, cfg.Labels)
		cfg.Labels = labels
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	mergeHealthConfig(cfg, ic.Healthcheck)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
}

// cloneConfig deep-copies the parts of a config the daemon changes.
func cloneConfig(in *container.Config) *container.Config {
	c := *in
	c.Env = slices.Clone(in.Env)
	c.Cmd = slices.Clone(in.Cmd)
	if in.Entrypoint != nil {
		c.Entrypoint = slices.Clone(in.Entrypoint)
	}
	c.Labels = maps.Clone(in.Labels)
	c.ExposedPorts = maps.Clone(in.ExposedPorts)
	c.Volumes = maps.Clone(in.Volumes)
	return &c
}

// stopTimeout returns the container's stop timeout: Config.StopTimeout
// or dockerd's 10 seconds; negative waits forever.
func (c *Container) stopTimeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.rec.Config.StopTimeout; t != nil {
		if *t < 0 {
			return -1
		}
		return time.Duration(*t) * time.Second
	}
	return 10 * time.Second
}

// errNotRunning is dockerd's 409 for a container that is not running.
func errNotRunning(id string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", id))
}

var errNoSuchExec = errors.New("no such exec")

// ulimitName turns a --ulimit name (nofile) into its rlimit (RLIMIT_NOFILE).
func ulimitName(n string) string { return "RLIMIT_" + strings.ToUpper(n) }

// itoa is strconv.Itoa.
func itoa(n int) string { return strconv.Itoa(n) }

var _ = zap.String
