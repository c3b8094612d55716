package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	evbus "github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
	wnet "github.com/wharfd/wharfd/modules/network"
	"github.com/wharfd/wharfd/modules/runtime"
	"github.com/wharfd/wharfd/modules/storage"
	"github.com/wharfd/wharfd/modules/volumes"
)

// ContainersDirName is the containers' directory in the data root.
const ContainersDirName = "containers"

// ContainersDir is stage 3.10's product: <data-root>/containers, where
// each container has a directory named by its ID.
type ContainersDir struct {
	// Path is the directory's absolute path.
	Path string
}

// NewContainersDir is stage 3.10 containers-dir: it creates
// <data-root>/containers (0710, as dockerd) when missing.
func NewContainersDir(root host.DataRoot) (ContainersDir, error) {
	dir := filepath.Join(root.Path, ContainersDirName)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return ContainersDir{}, fmt.Errorf("containers dir: %w", err)
	}
	return ContainersDir{Path: dir}, nil
}

// EventLogger is the part of the event bus the daemon uses.
type EventLogger interface {
	// Log records an event.
	Log(typ events.Type, action events.Action, actor events.Actor)
}

// Options are what a Daemon is built from; New fills them from the
// daemon's stages.
type Options struct {
	// Dir is the containers' directory.
	Dir string
	// Config is the daemon configuration (default ulimits, DNS, log
	// options, shutdown timeout).
	Config *config.Config
	// Runtime runs the containers.
	Runtime *runtime.Runtime
	// Store holds the containers' layers; Images resolves images.
	Store  *storage.Store
	Images *storage.Images
	// Events receives the container events; nil drops them.
	Events EventLogger
	// AppArmorProfile is the containers' default profile, "" without
	// AppArmor.
	AppArmorProfile string
	// ResolvConf is the host's resolv.conf (/etc/resolv.conf, or
	// systemd-resolved's upstream file when the host's points at its
	// stub); Hosts the host's hosts file, for --network host.
	ResolvConf, Hosts string
	// Logger receives the daemon's log.
	Logger *zap.Logger
	// Volumes is the volume service of the containers' volumes
	// (mounts.go); nil refuses volume mounts.
	Volumes VolumeService
	// Network is the network controller containers are attached to
	// (network.go); nil gives them lo only.
	Network *wnet.Controller
}

// Daemon is the container store and lifecycle: every container of the
// data root, by ID and name, and the operations of the container API.
// It is safe for concurrent use.
type Daemon struct {
	o   Options
	log *zap.Logger

	mu       sync.Mutex
	byID     map[string]*Container
	names    map[string]string // "/name" → ID
	execs    map[string]*Exec
	shutdown bool
	// bg counts background work (monitors, restarts, auto-removal).
	bg sync.WaitGroup
}

// Params are the needs of the daemon stage.
type Params struct {
	fx.In

	Config    *config.Config
	Dir       ContainersDir
	Runtime   *runtime.Runtime
	Store     *storage.Store
	Images    *storage.Images
	Events    *evbus.Bus
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	// AppArmor gives the default profile when the host has AppArmor.
	AppArmor host.AppArmor `optional:"true"`
	// Volumes is stage 3.15's volume service, for volume mounts.
	Volumes *volumes.Service `optional:"true"`
	// Network is stage 3.22's controller, for container networking.
	Network *wnet.Controller `optional:"true"`
}

// New is the daemon stage: it loads every container of the data root
// (Open), and its hooks apply the restart policies and auto-removal on
// start and stop every running container on shutdown, within
// --shutdown-timeout.
func New(p Params) (*Daemon, error) {
	d, err := Open(Options{
		Dir: p.Dir.Path, Config: p.Config, Runtime: p.Runtime, Store: p.Store, Images: p.Images,
		Events: p.Events, AppArmorProfile: p.AppArmor.Profile,
		Logger:  p.Logger.With(zap.String("module", "daemon")),
		Volumes: volumeService(p.Volumes),
		Network: p.Network,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { d.Restore(); return nil },
		OnStop:  d.Shutdown,
	})
	return d, nil
}

// Open loads the containers of o.Dir. Containers that were running when
// the daemon died are marked exited: 137 when the runtime killed what
// was left of them (Runtime.Stale), else 255 (status unknown, as
// dockerd). Directories without a readable record, from a create that
// never finished, are removed with their layer, as are layers of
// wharfd's containers that have no directory.
func Open(o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ResolvConf == "" {
		o.ResolvConf = hostResolvConf()
	}
	if o.Hosts == "" {
		o.Hosts = "/etc/hosts"
	}
	d := &Daemon{o: o, log: o.Logger, byID: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Exec{}}
	entries, err := os.ReadDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("read containers dir: %w", err)
	}
	stale := map[string]bool{}
	for _, id := range o.Runtime.Stale() {
		stale[id] = true
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(o.Dir, e.Name())
		c, err := loadContainer(dir)
		if err != nil {
			d.log.Warn("removing unfinished container", zap.String("container", e.Name()), zap.Error(err))
			d.deleteLayer(e.Name())
			os.RemoveAll(dir)
			continue
		}
		if _, err := o.Store.Containers().Container(c.rec.ID); err != nil {
			d.log.Warn("container has no layer: removed", zap.String("container", c.rec.ID), zap.Error(err))
			os.RemoveAll(dir)
			continue
		}
		st := &c.rec.State
		if st.Running || st.Paused || st.Restarting || st.Removing {
			code := 255
			if stale[c.rec.ID] {
				code = 137
			}
			if st.Running || st.Paused {
				st.ExitCode = code
				st.FinishedAt = time.Now().UTC()
			}
			st.Running, st.Paused, st.Restarting, st.Pid = false, false, false, 0
			_, _ = o.Store.Containers().Unmount(c.rec.ID, true)
			c.mu.Lock()
			c.saveOrLog(d.log)
			c.mu.Unlock()
		}
		lo, _ := parseLogConfig(c.host.LogConfig.Type, c.host.LogConfig.Config)
		c.log = newJSONLog(c.logPath(), lo)
		c.streams = newStreams(c.rec.Config.OpenStdin)
		d.byID[c.rec.ID] = c
		d.names[c.rec.Name] = c.rec.ID
		d.acquireVolumes(c) // volume references live in memory (mounts.go)
	}
	// Layers of containers whose directory is gone.
	if list, err := o.Store.Containers().Containers(); err == nil {
		for _, sc := range list {
			if sc.Metadata == layerMetadata && d.byID[sc.ID] == nil {
				d.log.Warn("removing layer of a container with no record", zap.String("container", sc.ID))
				d.deleteLayer(sc.ID)
			}
		}
	}
	d.restoreNetworking() // stale namespaces and endpoints released (network.go)
	return d, nil
}

// layerMetadata marks the storage containers the daemon made.
const layerMetadata = `{"wharfd":"container"}`

// deleteLayer unmounts and deletes the storage container id, if any.
func (d *Daemon) deleteLayer(id string) {
	cs := d.o.Store.Containers()
	if _, err := cs.Container(id); err != nil {
		return
	}
	_, _ = cs.Unmount(id, true)
	if err := cs.DeleteContainer(id); err != nil {
		d.log.Warn("cannot delete container layer", zap.String("container", id), zap.Error(err))
	}
}

// Restore applies the restart policies after a boot, as dockerd's
// restore: a container started before whose policy says so (always;
// unless-stopped when not stopped by hand; on-failure[:N] after a
// failure) is started again; a stopped AutoRemove container is removed.
// It waits for the starts.
func (d *Daemon) Restore() {
	var wg sync.WaitGroup
	for _, c := range d.list() {
		rec, host := c.snapshot()
		switch {
		case host.AutoRemove && !rec.State.Running:
			if err := d.Remove(context.Background(), rec.ID, RemoveOptions{Force: true, Volumes: true}); err != nil {
				d.log.Warn("cannot remove container on boot", zap.String("container", rec.ID), zap.Error(err))
			}
		case rec.HasBeenStartedBefore && shouldRestart(host.RestartPolicy, rec.State.ExitCode, rec.HasBeenManuallyStopped, rec.RestartCount, true):
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.start(context.Background(), c, startRestore); err != nil {
					d.log.Warn("cannot restart container on boot", zap.String("container", rec.ID), zap.Error(err))
				}
			}()
		}
	}
	wg.Wait()
}

// shouldRestart is dockerd's restart manager decision. boot is true at a
// daemon start, when "always" restarts even a container stopped by hand.
func shouldRestart(p containerRestartPolicy, exitCode int, manuallyStopped bool, restarts int, boot bool) bool {
	switch p.Name {
	case "always":
		return boot || !manuallyStopped
	case "unless-stopped":
		return !manuallyStopped
	case "on-failure":
		if manuallyStopped && !boot {
			return false
		}
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// Shutdown stops every running container, as dockerd on exit: its stop
// signal, then SIGKILL after its stop timeout, all within the daemon's
// --shutdown-timeout (a negative one waits without limit) and ctx. The
// containers keep their restart policies for the next boot.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.shutdown = true
	d.mu.Unlock()
	limit := config.DefaultShutdownTimeout
	if d.o.Config != nil {
		limit = d.o.Config.ShutdownTimeout
	}
	var wg sync.WaitGroup
	for _, c := range d.list() {
		c.mu.Lock()
		c.cancelRestartLocked()
		running := c.proc != nil
		c.mu.Unlock()
		if !running {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := c.stopTimeout()
			if limit >= 0 && (timeout < 0 || timeout > limit) {
				timeout = limit
			}
			if err := d.stopContainer(ctx, c, -1, timeout, false); err != nil {
				d.log.Warn("cannot stop container", zap.String("container", c.ID()), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { d.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// list returns every container, sorted by creation time, newest first.
func (d *Daemon) list() []*Container {
	d.mu.Lock()
	out := slices.Collect(maps.Values(d.byID))
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b *Container) int {
		ra, _ := a.snapshot()
		rb, _ := b.snapshot()
		return rb.Created.Compare(ra.Created)
	})
	return out
}

// NoSuchContainerError is dockerd's 404 for an unknown container:
// "No such container: <ref>".
type NoSuchContainerError struct {
	// Ref is the ID, prefix or name asked for.
	Ref string
}

func (e NoSuchContainerError) Error() string { return "No such container: " + e.Ref }

// Unwrap makes the error errdefs.ErrNotFound.
func (e NoSuchContainerError) Unwrap() error { return errdefs.ErrNotFound }

// get finds a container by full ID, name (with or without its slash) or
// unique ID prefix, in that order, as dockerd's GetContainer.
func (d *Daemon) get(ref string) (*Container, error) {
	if ref == "" {
		return nil, NoSuchContainerError{Ref: ref}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := d.names[name]; ok {
		return d.byID[id], nil
	}
	var found *Container
	for id, c := range d.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("multiple IDs found with provided prefix: " + ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, NoSuchContainerError{Ref: ref}
	}
	return found, nil
}

// event logs a container event with dockerd's attributes: the
// container's labels, image and name, plus extra.
func (d *Daemon) event(c *Container, action events.Action, extra map[string]string) {
	if d.o.Events == nil {
		return
	}
	c.mu.Lock()
	attrs := make(map[string]string, len(c.rec.Config.Labels)+2+len(extra))
	maps.Copy(attrs, c.rec.Config.Labels)
	attrs["image"] = c.rec.Config.Image
	attrs["name"] = strings.TrimPrefix(c.rec.Name, "/")
	id := c.rec.ID
	c.mu.Unlock()
	maps.Copy(attrs, extra)
	d.o.Events.Log(events.ContainerEventType, action, events.Actor{ID: id, Attributes: attrs})
}

// isShuttingDown reports whether Shutdown has begun.
func (d *Daemon) isShuttingDown() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shutdown
}

// ImageInUse reports which containers use the image with ID imageID
// ("sha256:<hex>" or the bare hex), and whether one of them is running:
// the image service refuses to delete it with dockerd's 409 texts
// ("image is being used by running container …", "… by stopped
// container …").
func (d *Daemon) ImageInUse(imageID string) (containerIDs []string, running bool) {
	if !strings.HasPrefix(imageID, "sha256:") {
		imageID = "sha256:" + imageID
	}
	for _, c := range d.list() {
		rec, _ := c.snapshot()
		if rec.Image != imageID {
			continue
		}
		if rec.State.Running {
			running = true
			containerIDs = append([]string{rec.ID}, containerIDs...)
			continue
		}
		containerIDs = append(containerIDs, rec.ID)
	}
	return containerIDs, running
}

// ContainerCounts returns the number of running, paused and stopped
// containers, for /info.
func (d *Daemon) ContainerCounts() (running, paused, stopped int) {
	for _, c := range d.list() {
		rec, _ := c.snapshot()
		switch {
		case rec.State.Running && rec.State.Paused:
			paused++
		case rec.State.Running:
			running++
		default:
			stopped++
		}
	}
	return running, paused, stopped
}

// hostResolvConf returns the resolv.conf containers' files derive from,
// as dockerd: /etc/resolv.conf, or /run/systemd/resolve/resolv.conf when
// the host's file points at systemd-resolved's stub 127.0.0.53.
func hostResolvConf() string {
	const stub, upstream = "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"
	b, err := os.ReadFile(stub)
	if err == nil && strings.Contains(string(b), "127.0.0.53") {
		if _, err := os.Stat(upstream); err == nil {
			return upstream
		}
	}
	return stub
}

var errShuttingDown = errors.New("daemon is shutting down")
