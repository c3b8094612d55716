package system

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"go.uber.org/fx"
)

// The types below are what /info and /system/df read from the modules
// that own the facts. Containers, Images and Storage are optional inputs
// of the system stage: a module provides its implementation as exactly
// that interface type (a stage constructor returning system.Images, say).
// Plugin names and disk usage come from several modules, so they are
// value groups. Until a module provides its part, the fields it fills
// stay zero — never invented.

// Containers reports the container counts of /info (modules/daemon).
type Containers interface {
	// ContainerCounts returns the number of containers in each state.
	ContainerCounts() (running, paused, stopped int)
}

// Init reports the init binary of --init containers for /info's
// InitBinary and InitCommit (modules/daemon).
type Init interface {
	// InitBinary returns the init's name ("docker-init", "tini-static")
	// and the commit or version it reports, "" when unknown.
	InitBinary() (binary, commit string)
}

// Images reports the image count of /info (modules/storage).
type Images interface {
	// ImageCount returns the number of images (not of tags).
	ImageCount() int
}

// Storage reports the storage driver of /info (modules/storage).
type Storage interface {
	// DriverStatus returns the graph driver's name ("overlay") and its
	// status lines ([["Backing Filesystem", "extfs"], …]).
	DriverStatus() (driver string, status [][2]string)
}

// PluginSet is one kind of driver the daemon has, for /info's Plugins: a
// module contributes it to the "plugins" value group with PluginsResult.
type PluginSet struct {
	// Kind is "Volume", "Network", "Authorization" or "Log".
	Kind string
	// Names are the drivers' names ("local"; "bridge", "host", "null").
	Names []string
}

// PluginsResult is how a module contributes a PluginSet.
type PluginsResult struct {
	fx.Out
	// Set is the contribution.
	Set PluginSet `group:"plugins"`
}

// Usage is one module's share of GET /system/df; the parts it does not
// own are nil. Items are filled only when verbose is asked.
type Usage struct {
	Images     *image.DiskUsage
	Containers *container.DiskUsage
	Volumes    *volume.DiskUsage
}

// DiskUsage is implemented by a module that owns disk space; it is
// contributed to the "diskusage" value group with DiskUsageResult.
type DiskUsage interface {
	// DiskUsage returns the module's share. verbose asks for the Items.
	DiskUsage(ctx context.Context, verbose bool) (Usage, error)
}

// DiskUsageResult is how a module contributes a DiskUsage.
type DiskUsageResult struct {
	fx.Out
	// Usage is the contribution.
	Usage DiskUsage `group:"diskusage"`
}
