package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"go.uber.org/fx"
	"go.uber.org/zap"

	cstorage "go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/idtools"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

// Graph driver names. DriverOverlay is also accepted as "overlay2", the
// name dockerd uses for it.
const (
	// DriverOverlay is the overlay filesystem driver, the default when the
	// kernel and the backing filesystem support it.
	DriverOverlay = "overlay"
	// DriverVFS is the copy-everything driver that works everywhere.
	DriverVFS = "vfs"
)

// drivers are the graph drivers the daemon offers, in order of preference.
var drivers = []string{DriverOverlay, DriverVFS}

// StoreOptions say where and how a Store is opened.
type StoreOptions struct {
	// Root holds the store's persistent data (<data-root>/storage).
	Root string
	// RunRoot holds its runtime state (<exec-root>/storage).
	RunRoot string
	// Driver is the requested graph driver: "overlay", "overlay2", "vfs",
	// or "" to use the driver of existing data, else overlay when
	// supported, else vfs.
	Driver string
	// Options are the driver's options, "[driver.]key=value" as
	// --storage-opt takes them.
	Options []string
	// UIDMap and GIDMap map the store's files for userns-remap; empty
	// maps nothing.
	UIDMap, GIDMap []idtools.IDMap
	// TmpDir is where archives are staged on their way in or out
	// (<root>/tmp when empty); whatever an operation puts there it
	// removes.
	TmpDir string
}

// Store is the daemon's layer and image store: a go.podman.io/storage store
// and the graph driver it runs on. It is safe for concurrent use.
type Store struct {
	cs     cstorage.Store
	driver string
	tmp    string
	log    *zap.Logger
}

// StoreParams are what the graphdriver stage needs.
type StoreParams struct {
	fx.In
	// Config gives the driver asked for ($DOCKER_DRIVER beats
	// --storage-driver) and --storage-opt.
	Config *config.Config
	// DataRoot and ExecRoot are the effective roots of stage 3.7
	// (<data-root>/<uid>.<gid> with userns-remap).
	DataRoot host.DataRoot
	ExecRoot host.ExecRoot
	// Identity maps the store's files for userns-remap (3.5).
	Identity host.Identity
	// TmpDir (3.8) holds archives on their way in or out, under
	// "images".
	TmpDir host.TmpDir
	// Log is the daemon's logger.
	Log *zap.Logger
	// Lifecycle takes the hook that shuts the store down.
	Lifecycle fx.Lifecycle
}

// NewStore is stage 3.11 graphdriver: it opens the store under
// <data-root>/storage (run root <exec-root>/storage) and shuts it down,
// unmounting every layer, when the daemon stops.
func NewStore(p StoreParams) (*Store, error) {
	s, err := OpenStore(StoreOptions{
		Root:    filepath.Join(p.DataRoot.Path, "storage"),
		RunRoot: filepath.Join(p.ExecRoot.Path, "storage"),
		Driver:  p.Config.StorageDriverName(),
		Options: p.Config.StorageOpts,
		UIDMap:  idMaps(p.Identity.UIDMaps),
		GIDMap:  idMaps(p.Identity.GIDMaps),
		TmpDir:  filepath.Join(p.TmpDir.Path, "images"),
	}, p.Log.With(zap.String("module", "storage")))
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return s.Shutdown() }})
	return s, nil
}

// OpenStore opens (creating if needed) the store o describes. The driver
// is chosen as dockerd would, except that an explicit driver differing
// from the driver of existing data is refused rather than silently hiding
// that data: the error names both drivers and is errdefs.InvalidArgument,
// as are unknown drivers and malformed or foreign options.
func OpenStore(o StoreOptions, log *zap.Logger) (*Store, error) {
	requested, err := normaliseDriver(o.Driver)
	if err != nil {
		return nil, err
	}
	existing, err := driversWithData(o.Root)
	if err != nil {
		return nil, err
	}
	var candidates []string
	switch {
	case requested != "":
		if len(existing) > 0 && !slices.Contains(existing, requested) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
				"storage driver %q requested, but %s holds data of storage driver %q: "+
					"remove that data or choose %q (--storage-driver or $DOCKER_DRIVER)",
				displayDriver(requested), o.Root, displayDriver(existing[0]), displayDriver(existing[0])))
		}
		candidates = []string{requested}
	case len(existing) == 1:
		log.Info("using the storage driver of existing data", zap.String("driver", existing[0]), zap.String("root", o.Root))
		candidates = existing
	case len(existing) > 1:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"%s contains data of several storage drivers (%s): remove the unused ones or choose one (--storage-driver)",
			o.Root, strings.Join(existing, ", ")))
	default:
		candidates = drivers
	}
	tmp := o.TmpDir
	if tmp == "" {
		tmp = filepath.Join(o.Root, "tmp")
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create store temporary directory: %w", err)
	}
	for i, driver := range candidates {
		if err := checkDriverOptions(driver, o.Options); err != nil {
			return nil, err
		}
		cs, err := cstorage.GetStore(cstorage.StoreOptions{
			RunRoot:            o.RunRoot,
			GraphRoot:          o.Root,
			GraphDriverName:    driver,
			GraphDriverOptions: o.Options,
			UIDMap:             o.UIDMap,
			GIDMap:             o.GIDMap,
		})
		if err != nil {
			if i+1 < len(candidates) && driverUnsupported(err) {
				log.Info("storage driver not supported here, trying the next", zap.String("driver", driver), zap.Error(err))
				continue
			}
			if driverUnsupported(err) || strings.Contains(err.Error(), "nknown option") {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("storage driver %s: %v", displayDriver(driver), err))
			}
			return nil, fmt.Errorf("open store %q: %w", o.Root, err)
		}
		log.Info("store opened", zap.String("driver", driver), zap.String("root", o.Root))
		return &Store{cs: cs, driver: driver, tmp: tmp, log: log}, nil
	}
	return nil, fmt.Errorf("open store %q: no storage driver available", o.Root)
}

// idMaps converts the host module's ID ranges to the store's.
func idMaps(in []host.IDMap) []idtools.IDMap {
	var out []idtools.IDMap
	for _, m := range in {
		out = append(out, idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// normaliseDriver maps a driver name as given to the store's name;
// "overlay2" is overlay.
func normaliseDriver(name string) (string, error) {
	switch name {
	case "":
		return "", nil
	case "overlay2", DriverOverlay:
		return DriverOverlay, nil
	case DriverVFS:
		return DriverVFS, nil
	}
	return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown storage driver %q (supported: overlay2, vfs)", name))
}

// displayDriver is the name the docker CLI shows for a driver.
func displayDriver(name string) string {
	if name == DriverOverlay {
		return "overlay2"
	}
	return name
}

// driverUnsupported reports whether err says the driver cannot run here
// (kernel, filesystem, prerequisites).
func driverUnsupported(err error) bool {
	return errors.Is(err, graphdriver.ErrNotSupported) || errors.Is(err, graphdriver.ErrPrerequisites) ||
		errors.Is(err, graphdriver.ErrIncompatibleFS)
}

// checkDriverOptions validates --storage-opt values before the driver sees
// them: each is [driver.]key=value, and a driver prefix must name the
// driver in use. The driver itself then refuses unknown keys.
func checkDriverOptions(driver string, opts []string) error {
	for _, opt := range opts {
		key, _, ok := strings.Cut(opt, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid storage option %q: want key=value", opt))
		}
		prefix, _, dotted := strings.Cut(key, ".")
		if !dotted {
			continue
		}
		p, err := normaliseDriver(strings.ToLower(prefix))
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid storage option %q: unknown driver %q", opt, prefix))
		}
		if p != driver {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid storage option %q: it is for storage driver %s, the driver in use is %s",
				opt, displayDriver(p), displayDriver(driver)))
		}
	}
	return nil
}

// driversWithData returns the drivers that hold layers, images or
// containers under root, in order of preference.
func driversWithData(root string) ([]string, error) {
	var found []string
	for _, d := range drivers {
		for _, f := range []string{d + "-layers/layers.json", d + "-images/images.json", d + "-containers/containers.json"} {
			has, err := nonEmptyJSONList(filepath.Join(root, f))
			if err != nil {
				return nil, err
			}
			if has {
				found = append(found, d)
				break
			}
		}
	}
	return found, nil
}

// nonEmptyJSONList reports whether the file holds a JSON array with at
// least one element; a missing file holds none.
func nonEmptyJSONList(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		// Not ours to judge: the store reports a corrupt file itself.
		return len(strings.TrimSpace(string(b))) > 2, nil
	}
	return len(list) > 0, nil
}

// Driver returns the graph driver in use, "overlay" or "vfs".
func (s *Store) Driver() string { return s.driver }

// DriverName returns the driver's name as `docker info` shows it:
// "overlay2" or "vfs".
func (s *Store) DriverName() string { return displayDriver(s.driver) }

// Root returns the store's root directory.
func (s *Store) Root() string { return s.cs.GraphRoot() }

// Containers returns the underlying go.podman.io/storage store, for the
// container engine's read-write layers (CreateContainer, Mount, …).
func (s *Store) Containers() cstorage.Store { return s.cs }

// Status returns the driver's status lines, as `docker info` shows under
// "Storage Driver".
func (s *Store) Status() ([][2]string, error) { return s.cs.Status() }

// Shutdown unmounts every layer and releases the store; the Store must not
// be used afterwards. It is the graphdriver stage's stop hook.
func (s *Store) Shutdown() error {
	mounted, err := s.cs.Shutdown(true)
	s.cs.Free()
	if err != nil {
		return fmt.Errorf("shut down store (mounted layers %v): %w", mounted, err)
	}
	return nil
}
