package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/runtime"
)

// File names in a container's directory.
const (
	configFile     = "config.v2.json"
	hostConfigFile = "hostconfig.json"
	hostsFile      = "hosts"
	hostnameFile   = "hostname"
	resolvConfFile = "resolv.conf"
)

// State is a container's persisted state, the State of GET
// /containers/{id}/json.
type State struct {
	// Running, Paused and Restarting are the container's status flags;
	// Dead marks a container whose removal failed.
	Running, Paused, Restarting, Dead bool
	// Removing is set while the container is being removed.
	Removing bool
	// OOMKilled is true when the OOM killer struck during the last run.
	OOMKilled bool
	// Pid is the init's PID while running, 0 otherwise.
	Pid int
	// ExitCode is the last run's exit code (128+n for a signal).
	ExitCode int
	// Error is the last start's error, "" after a good start.
	Error string
	// StartedAt and FinishedAt are the last start and exit, zero if
	// never.
	StartedAt, FinishedAt time.Time
	// Health is the health check's state, nil without one (health.go).
	Health *container.Health `json:",omitempty"`
}

// Status returns the state as the API names it: created, running,
// paused, restarting, removing, exited or dead.
func (s *State) Status(startedBefore bool) container.ContainerState {
	switch {
	case s.Removing:
		return container.StateRemoving
	case s.Dead:
		return container.StateDead
	case s.Running && s.Paused:
		return container.StatePaused
	case s.Restarting:
		return container.StateRestarting
	case s.Running:
		return container.StateRunning
	case !startedBefore && s.StartedAt.IsZero() && s.FinishedAt.IsZero():
		return container.StateCreated
	}
	return container.StateExited
}

// Record is what config.v2.json holds.
type Record struct {
	// ID is the container's 64 hex digit ID, also its storage container's.
	ID string
	// Name is the container's name with its leading slash.
	Name string
	// Created is the creation time.
	Created time.Time
	// Path and Args are the command: the entrypoint (or command) and the
	// rest.
	Path string
	Args []string
	// Config is the container's configuration merged with its image's.
	Config *container.Config
	// Image is the image ID, "sha256:<hex>".
	Image string
	// Driver is the graph driver of its layer.
	Driver string
	// State is the state.
	State State
	// RestartCount counts the restarts by the restart policy since the
	// last start by a user.
	RestartCount int
	// HasBeenStartedBefore and HasBeenManuallyStopped steer restart
	// policies across daemon restarts, as dockerd's.
	HasBeenStartedBefore   bool
	HasBeenManuallyStopped bool
	// AppArmorProfile is the profile of the last start.
	AppArmorProfile string
	// MountPoints are the container's volumes, binds and --mount tmpfs,
	// sorted by destination (mounts.go).
	MountPoints []MountPoint `json:",omitempty"`
	// Network is the container's networks and, while it runs, its
	// addresses and ports (network.go); nil in records from before it.
	Network *NetworkState `json:",omitempty"`
}

// Container is one container: its record, host config and, while it
// runs, its runtime handle and streams.
type Container struct {
	dir string

	mu   sync.Mutex
	rec  Record
	host *container.HostConfig
	// changed is closed and replaced on every state change: waiters
	// select on it.
	changed chan struct{}
	// exits counts the exits since the daemon started.
	exits int
	// removed is closed once the container is gone.
	removed chan struct{}

	// op serialises start, stop, restart, kill-to-stop and remove.
	op sync.Mutex

	// While running:
	rc      *runtime.Container
	proc    *runtime.Process
	streams *streams
	log     *jsonLog
	// net is the container's live networking (network.go).
	net netRuntime
	// stopping is set by stop, kill with the stop signal and remove, so
	// that the exit does not trigger the restart policy.
	stopping bool
	// restartTimer is the pending restart by the policy.
	restartTimer *time.Timer
	// restartCancel cancels a pending restart (closed by stop/remove).
	restartCancel chan struct{}
	// backoff is the restart policy's current delay.
	backoff time.Duration
	// execs are the container's exec IDs.
	execs []string
	// health is the running health monitor (health.go).
	health *healthMonitor
}

func newContainer(dir string, rec Record, host *container.HostConfig) *Container {
	return &Container{dir: dir, rec: rec, host: host, changed: make(chan struct{}), removed: make(chan struct{})}
}

// notifyLocked wakes the waiters. c.mu must be held.
func (c *Container) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// ID returns the container's ID.
func (c *Container) ID() string { return c.rec.ID }

// Name returns the container's name with its slash.
func (c *Container) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Name
}

// snapshot returns copies of the record and host config.
func (c *Container) snapshot() (Record, *container.HostConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec, c.host
}

// path returns a file of the container's directory.
func (c *Container) path(name string) string { return filepath.Join(c.dir, name) }

// logPath returns the json-file log's path.
func (c *Container) logPath() string { return c.path(c.rec.ID + "-json.log") }

// saveLocked writes config.v2.json and hostconfig.json atomically. c.mu
// must be held.
func (c *Container) saveLocked() error {
	if err := writeJSONAtomic(c.path(configFile), c.rec); err != nil {
		return err
	}
	return writeJSONAtomic(c.path(hostConfigFile), c.host)
}

// saveOrLog saves and logs a failure: the state in memory stays right.
func (c *Container) saveOrLog(log *zap.Logger) {
	if err := c.saveLocked(); err != nil {
		log.Error("cannot save container", zap.String("container", c.rec.ID), zap.Error(err))
	}
}

// writeJSONAtomic writes v as JSON to path through a temporary file in
// the same directory, fsynced and renamed over path, so a crash leaves
// the old file or the new one, never half of one.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// loadContainer reads a container's directory.
func loadContainer(dir string) (*Container, error) {
	var rec Record
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", configFile, err)
	}
	if rec.ID != filepath.Base(dir) || rec.Config == nil {
		return nil, errors.New("config.v2.json does not describe this container")
	}
	host := &container.HostConfig{}
	if b, err := os.ReadFile(filepath.Join(dir, hostConfigFile)); err == nil {
		if err := json.Unmarshal(b, host); err != nil {
			return nil, fmt.Errorf("%s: %w", hostConfigFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return newContainer(dir, rec, host), nil
}
