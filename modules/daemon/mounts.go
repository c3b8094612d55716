package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/volumes"
)

// VolumeService is what the daemon uses of the volume service of stage
// 3.15 (*volumes.Service): volumes created or found for a container's
// mounts at create, held (Acquire) while the container exists, mounted
// while it runs, and its anonymous ones removed with it.
type VolumeService interface {
	// Create creates a volume, or returns the existing one of that name
	// (created false); o.Reference becomes a holder either way.
	Create(ctx context.Context, o volumes.CreateOptions) (v volume.Volume, created bool, err error)
	// Acquire records ref as a holder of the volume name.
	Acquire(name, ref string) error
	// Release forgets ref as a holder.
	Release(name, ref string)
	// MountFor mounts the volume for ref and returns its data directory;
	// attrs go into the mount event.
	MountFor(name, ref string, attrs map[string]string) (string, error)
	// Unmount undoes one MountFor.
	Unmount(name, ref string) error
	// Populate copies src into the volume when it is empty.
	Populate(ctx context.Context, name, ref, src string) (copied bool, err error)
	// Remove removes an unreferenced volume.
	Remove(ctx context.Context, name string, force bool) error
	// RootPair is the owner of the volumes' data: the containers' root.
	RootPair() (uid, gid int)
}

var _ VolumeService = (*volumes.Service)(nil)

// errNoVolumes refuses a volume mount when the daemon runs without a
// volume service (tests that build a Daemon without one).
var errNoVolumes = errdefs.ErrNotImplemented.WithMessage("volumes are not available: no volume service")

// MountPoint is one mount of a container (-v, --mount, --volumes-from,
// an image VOLUME) as its record keeps it, as dockerd's MountPoints of
// config.v2.json. --tmpfs mounts are not mount points: the runtime makes
// them from HostConfig.Tmpfs, as dockerd.
type MountPoint struct {
	// Type is mount.TypeVolume, mount.TypeBind or mount.TypeTmpfs.
	Type mount.Type
	// Name is a volume's name (a generated 64-hex name for an anonymous
	// one).
	Name string `json:",omitempty"`
	// Source is a bind's host path, or a volume's data directory.
	Source string `json:",omitempty"`
	// Destination is the absolute, clean path in the container.
	Destination string
	// Driver is a volume's driver.
	Driver string `json:",omitempty"`
	// Mode is a -v spec's mode ("ro", "nocopy"), "z" for a local volume
	// given without one, as dockerd; empty otherwise.
	Mode string
	// RW is false for a read-only mount.
	RW bool
	// Propagation is a bind's propagation (rprivate unless given).
	Propagation mount.Propagation
	// CreateSource says a missing bind source is created at start (-v,
	// or --mount with bind-create-mountpoint), as dockerd.
	CreateSource bool `json:",omitempty"`
	// TmpfsOptions are a --mount tmpfs's mount options.
	TmpfsOptions []string `json:",omitempty"`
	// Spec is the mount as given (for -v, the mount it amounts to). A
	// volume whose Spec has no Source is anonymous for the container:
	// docker rm -v and --rm remove it, as dockerd.
	Spec mount.Mount
}

// anonymous reports whether m is a volume that rm -v removes.
func (m *MountPoint) anonymous() bool { return m.Type == mount.TypeVolume && m.Spec.Source == "" }

// subpath returns a volume mount's --mount volume-subpath.
func (m *MountPoint) subpath() string {
	if m.Spec.VolumeOptions != nil {
		return m.Spec.VolumeOptions.Subpath
	}
	return ""
}

// checkMounts validates a create request's -v, --mount, --tmpfs and
// --volumes-from entries before anything is made, as dockerd: bad specs
// are 400 with dockerd's texts ("invalid volume specification: …",
// "invalid mount config for type \"bind\": bind source path does not
// exist: /x", "Duplicate mount point: /data", …).
func checkMounts(h *container.HostConfig) ([]*volumes.MountPoint, error) {
	parsed, err := volumes.ParseMounts(h.Binds, h.Mounts, h.Tmpfs, h.VolumeDriver)
	if err != nil {
		return nil, err
	}
	for _, v := range h.VolumesFrom {
		if _, _, err := volumes.ParseVolumesFrom(v); err != nil {
			return nil, err
		}
	}
	return parsed, nil
}

// prepareMounts makes the mount points of container id at create, as
// dockerd's registerMountPoints and createContainerOSSpecificSettings:
// the mounts of --volumes-from containers (read-only with :ro), then -v
// and --mount entries (which replace them at the same destination),
// then an anonymous volume for each image VOLUME (cfg.Volumes) that
// nothing else is mounted on. Named volumes are created when missing
// (their create event logged) and every volume is held by id. An empty
// volume with copy-up (no nocopy) is populated from the image's content
// at its destination, for which the container's layer is mounted.
//
// undo releases the volumes and removes those this call created; it
// runs on error, and the caller runs it when the create fails later.
func (d *Daemon) prepareMounts(ctx context.Context, id string, cfg *container.Config, h *container.HostConfig, parsed []*volumes.MountPoint) (mps []MountPoint, undo func(), retErr error) {
	return d.registerMounts(ctx, id, cfg, h, parsed, func() (string, func(), error) {
		cs := d.o.Store.Containers()
		p, err := cs.Mount(id, "")
		if err != nil {
			return "", nil, fmt.Errorf("mount container layer: %w", err)
		}
		return p, func() { _, _ = cs.Unmount(id, false) }, nil
	})
}

// registerMounts is prepareMounts with the container's root filesystem
// mounted by mountRootfs (which returns its path and its unmount), when
// image content is needed.
func (d *Daemon) registerMounts(ctx context.Context, id string, cfg *container.Config, h *container.HostConfig, parsed []*volumes.MountPoint,
	mountRootfs func() (string, func(), error)) (mps []MountPoint, _ func(), retErr error) {
	var created, held []string
	undo := func() {
		for _, name := range held {
			d.o.Volumes.Release(name, id)
		}
		for _, name := range created {
			if err := d.o.Volumes.Remove(context.WithoutCancel(ctx), name, false); err != nil {
				d.log.Warn("cannot remove volume of a failed create", zap.String("volume", name), zap.Error(err))
			}
		}
	}
	defer func() {
		if retErr != nil {
			undo()
		}
	}()
	// create creates or finds the volume of mp and holds it for id.
	create := func(mp *MountPoint, o volumes.CreateOptions) error {
		if d.o.Volumes == nil {
			return errNoVolumes
		}
		o.Reference = id
		v, isNew, err := d.o.Volumes.Create(ctx, o)
		if err != nil {
			return err
		}
		held = append(held, v.Name)
		if isNew {
			created = append(created, v.Name)
		}
		mp.Name, mp.Source, mp.Driver = v.Name, v.Mountpoint, v.Driver
		return nil
	}

	byDest := map[string]MountPoint{}
	// --tmpfs destinations: ParseMounts refuses another entry at one, so
	// a parsed tmpfs there is the --tmpfs entry itself.
	tmpfs := map[string]bool{}
	for dest := range h.Tmpfs {
		tmpfs[path.Clean(dest)] = true
	}
	// 1. --volumes-from: the other container's mount points, no copy-up.
	for _, spec := range h.VolumesFrom {
		ref, mode, err := volumes.ParseVolumesFrom(spec)
		if err != nil {
			return nil, nil, err
		}
		from, err := d.get(ref)
		if err != nil {
			// dockerd answers 400 here: the reference is a parameter.
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		frec, _ := from.snapshot()
		rw := !slices.Contains(strings.Split(mode, ","), "ro")
		for _, m := range frec.MountPoints {
			m.RW = m.RW && rw
			m.TmpfsOptions = slices.Clone(m.TmpfsOptions)
			byDest[m.Destination] = m
		}
	}
	// 2. -v and --mount (--tmpfs entries are the runtime's).
	var copyUp []string // destinations
	for _, p := range parsed {
		if tmpfs[p.Destination] {
			continue
		}
		mp := MountPoint{
			Type: p.Type, Source: p.Source, Destination: p.Destination, Mode: p.Mode, RW: p.RW,
			Propagation: p.Propagation, CreateSource: p.CreateSource,
			TmpfsOptions: slices.Clone(p.TmpfsOptions), Spec: p.Spec,
		}
		if p.Type == mount.TypeVolume {
			mp.Propagation = ""
			if err := create(&mp, p.VolumeCreateOptions()); err != nil {
				return nil, nil, err
			}
			if mp.Driver == volumes.DriverName && mp.Mode == "" {
				mp.Mode = "z"
			}
			if p.CopyData && mp.subpath() == "" {
				copyUp = append(copyUp, mp.Destination)
			}
		}
		byDest[mp.Destination] = mp
	}
	// 3. Image VOLUMEs: anonymous volumes where nothing else is mounted.
	var imageVols []string
	for _, dest := range slices.Sorted(maps.Keys(cfg.Volumes)) {
		clean := path.Clean(dest)
		if _, ok := byDest[clean]; ok || tmpfs[clean] {
			continue
		}
		if !path.IsAbs(clean) || clean == "/" {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s'", dest))
		}
		imageVols = append(imageVols, clean)
	}

	var rootfs string
	if len(imageVols) > 0 || len(copyUp) > 0 {
		p, unmount, err := mountRootfs()
		if err != nil {
			return nil, nil, err
		}
		defer unmount()
		rootfs = p
	}
	for _, dest := range imageVols {
		inRoot, err := securejoin.SecureJoin(rootfs, dest)
		if err != nil {
			return nil, nil, err
		}
		if st, err := os.Stat(inRoot); err == nil && !st.IsDir() {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage("cannot mount volume over existing file, file exists " + inRoot)
		}
		mp := MountPoint{Type: mount.TypeVolume, Destination: dest, RW: true, Spec: mount.Mount{Type: mount.TypeVolume, Target: dest}}
		if err := create(&mp, volumes.CreateOptions{Driver: h.VolumeDriver}); err != nil {
			return nil, nil, err
		}
		byDest[dest] = mp
		copyUp = append(copyUp, dest)
	}
	// 4. Volumes from --volumes-from that nothing replaced are held too.
	for _, m := range byDest {
		if m.Type == mount.TypeVolume && !slices.Contains(held, m.Name) {
			if d.o.Volumes == nil {
				return nil, nil, errNoVolumes
			}
			if err := d.o.Volumes.Acquire(m.Name, id); err != nil {
				return nil, nil, err
			}
			held = append(held, m.Name)
		}
	}
	// 5. Copy-up, as dockerd's populateVolumes at create.
	for _, dest := range copyUp {
		m := byDest[dest]
		src, err := securejoin.SecureJoin(rootfs, dest)
		if err != nil {
			return nil, nil, err
		}
		if _, err := d.o.Volumes.Populate(ctx, m.Name, id, src); err != nil {
			return nil, nil, err
		}
	}
	for _, dest := range slices.Sorted(maps.Keys(byDest)) {
		mps = append(mps, byDest[dest])
	}
	return mps, undo, nil
}

// acquireVolumes holds the volumes of a container loaded at boot: the
// volume service keeps its references in memory only, as dockerd's.
func (d *Daemon) acquireVolumes(c *Container) {
	rec, _ := c.snapshot()
	for _, m := range rec.MountPoints {
		if m.Type != mount.TypeVolume {
			continue
		}
		if d.o.Volumes == nil {
			d.log.Warn("container has volumes but there is no volume service", zap.String("container", rec.ID))
			return
		}
		if err := d.o.Volumes.Acquire(m.Name, rec.ID); err != nil {
			d.log.Warn("volume of a container is gone", zap.String("container", rec.ID), zap.String("volume", m.Name), zap.Error(err))
		}
	}
}

// setupMounts mounts the container's volumes for a run (their mount
// events logged with dockerd's attributes) and returns the runtime
// mounts of its mount points, parents before children. A -v bind's
// missing host path is created, owned by the containers' root, as
// dockerd; a --mount bind's must exist. On error nothing stays mounted;
// otherwise each volume is unmounted by unmountVolumes when the run
// ends.
func (d *Daemon) setupMounts(rec *Record) (_ []specs.Mount, retErr error) {
	var mounted []string
	defer func() {
		if retErr != nil {
			for _, name := range mounted {
				if err := d.o.Volumes.Unmount(name, rec.ID); err != nil {
					d.log.Warn("cannot unmount volume", zap.String("volume", name), zap.Error(err))
				}
			}
		}
	}()
	mps := slices.Clone(rec.MountPoints)
	slices.SortStableFunc(mps, func(a, b MountPoint) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	var out []specs.Mount
	for _, m := range mps {
		switch m.Type {
		case mount.TypeVolume:
			if d.o.Volumes == nil {
				return nil, errNoVolumes
			}
			p, err := d.o.Volumes.MountFor(m.Name, rec.ID, map[string]string{
				"destination": m.Destination,
				"read/write":  strconv.FormatBool(m.RW),
				"propagation": string(m.Propagation),
			})
			if err != nil {
				return nil, err
			}
			mounted = append(mounted, m.Name)
			if sub := m.subpath(); sub != "" {
				if p, err = volumeSubpath(p, sub); err != nil {
					return nil, err
				}
			}
			out = append(out, bindMount(p, &m))
		case mount.TypeBind:
			if err := d.bindSource(&m); err != nil {
				return nil, err
			}
			out = append(out, bindMount(m.Source, &m))
		case mount.TypeTmpfs:
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: slices.Clone(m.TmpfsOptions)})
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: mount type unknown", m.Type))
		}
	}
	return out, nil
}

// volumeSubpath resolves a --mount volume-subpath inside the volume's
// data directory p; it must exist, as dockerd.
func volumeSubpath(p, sub string) (string, error) {
	full, err := securejoin.SecureJoin(p, sub)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(full); err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot access path %s: %v", full, err))
	}
	return full, nil
}

// bindSource makes sure a bind's host path is there: created (each
// missing directory owned by the containers' root) for -v, required for
// --mount. A shared or slave propagation needs the source's mount to
// be shared (or slave), as dockerd.
func (d *Daemon) bindSource(m *MountPoint) error {
	_, err := os.Stat(m.Source)
	switch {
	case errors.Is(err, fs.ErrNotExist) && m.CreateSource:
		uid, gid := 0, 0
		if d.o.Volumes != nil {
			uid, gid = d.o.Volumes.RootPair()
		}
		if err := mkdirAllOwned(m.Source, uid, gid); err != nil {
			return fmt.Errorf("error while creating mount source path '%s': %w", m.Source, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source))
	case err != nil:
		return fmt.Errorf("bind source %s: %w", m.Source, err)
	}
	switch m.Propagation {
	case mount.PropagationShared, mount.PropagationRShared:
		return ensurePropagation(m.Source, "shared:")
	case mount.PropagationSlave, mount.PropagationRSlave:
		return ensurePropagation(m.Source, "shared:", "master:")
	}
	return nil
}

// mkdirAllOwned is os.MkdirAll(p, 0755) with every directory it makes
// owned by uid:gid; existing ones are left alone, as dockerd's
// MkdirAllAndChownNew.
func mkdirAllOwned(p string, uid, gid int) error {
	var missing []string
	for dir := filepath.Clean(p); ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, dir)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if uid != os.Geteuid() || gid != os.Getegid() {
			if err := os.Lchown(missing[i], uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensurePropagation checks that the mount holding p has one of the
// optional fields (shared:N, master:N), as dockerd's ensureShared and
// ensureSharedOrSlave: "path /x is mounted on / but it is not a shared
// mount" (InvalidArgument).
func ensurePropagation(p string, fields ...string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	ms, err := mountinfo.GetMounts(mountinfo.ParentsFilter(real))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	var best *mountinfo.Info
	for _, m := range ms {
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("no mount point holds %s", p)
	}
	for _, opt := range strings.Fields(best.Optional) {
		for _, f := range fields {
			if strings.HasPrefix(opt, f) {
				return nil
			}
		}
	}
	what := "shared"
	if len(fields) > 1 {
		what = "shared or slave"
	}
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("path %s is mounted on %s but it is not a %s mount", p, best.Mountpoint, what))
}

// bindMount is the runtime mount binding source at m's destination:
// recursive unless BindOptions.NonRecursive, read-only for !RW
// (recursively so with ReadOnlyForceRecursive), with m's propagation.
func bindMount(source string, m *MountPoint) specs.Mount {
	opts := []string{"rbind"}
	bo := m.Spec.BindOptions
	if bo != nil && bo.NonRecursive {
		opts[0] = "bind"
	}
	if !m.RW {
		opts = append(opts, "ro")
		if bo != nil && bo.ReadOnlyForceRecursive {
			opts = append(opts, "rro")
		}
	}
	if m.Propagation != "" {
		opts = append(opts, string(m.Propagation))
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: source, Options: opts}
}

// rootPropagation is the root filesystem's propagation a container's
// mounts need, as dockerd: rshared when one of them is shared, rslave
// when one is a slave, else "" (the runtime's default).
func rootPropagation(ms []specs.Mount) string {
	prop := ""
	for _, m := range ms {
		for _, o := range m.Options {
			switch o {
			case string(mount.PropagationShared), string(mount.PropagationRShared):
				return string(mount.PropagationRShared)
			case string(mount.PropagationSlave), string(mount.PropagationRSlave):
				prop = string(mount.PropagationRSlave)
			}
		}
	}
	return prop
}

// withMounts returns the container's mounts for the runtime: its mount
// points first, then the etc files (hostname, hosts, resolv.conf) except
// where a mount point replaces one, so that an etc file lands on top of
// a mounted /etc, as dockerd.
func withMounts(points, etc []specs.Mount) []specs.Mount {
	taken := map[string]bool{}
	for _, m := range points {
		taken[m.Destination] = true
	}
	out := slices.Clone(points)
	for _, m := range etc {
		if !taken[m.Destination] {
			out = append(out, m)
		}
	}
	return out
}

// unmountVolumes undoes setupMounts' volume mounts when a run ends (or a
// start fails after setupMounts succeeded): one unmount event per
// volume.
func (d *Daemon) unmountVolumes(c *Container) {
	rec, _ := c.snapshot()
	for _, m := range slices.Backward(rec.MountPoints) {
		if m.Type != mount.TypeVolume || d.o.Volumes == nil {
			continue
		}
		if err := d.o.Volumes.Unmount(m.Name, rec.ID); err != nil {
			d.log.Warn("cannot unmount volume", zap.String("container", rec.ID), zap.String("volume", m.Name), zap.Error(err))
		}
	}
}

// releaseVolumes lets go of a removed container's volumes, as dockerd's
// removeMountPoints: every volume is released, and with rm (docker rm
// -v, --rm) its anonymous ones are removed; one still used by another
// container stays, quietly. Named volumes are never removed.
func (d *Daemon) releaseVolumes(ctx context.Context, c *Container, rm bool) {
	if d.o.Volumes == nil {
		return
	}
	rec, _ := c.snapshot()
	for _, m := range rec.MountPoints {
		if m.Type == mount.TypeVolume {
			d.o.Volumes.Release(m.Name, rec.ID)
		}
	}
	if !rm {
		return
	}
	done := map[string]bool{}
	for _, m := range rec.MountPoints {
		if !m.anonymous() || done[m.Name] {
			continue
		}
		done[m.Name] = true
		if err := d.o.Volumes.Remove(context.WithoutCancel(ctx), m.Name, false); err != nil && !errdefs.IsConflict(err) && !errdefs.IsNotFound(err) {
			d.log.Warn("cannot remove volume of a removed container", zap.String("container", rec.ID), zap.String("volume", m.Name), zap.Error(err))
		}
	}
}

// apiMounts returns the mount points as GET /containers/{id}/json and GET
// /containers/json show them (Type, Name, Source, Destination, Driver,
// Mode, RW, Propagation), sorted by destination.
func apiMounts(rec *Record) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(rec.MountPoints))
	for _, m := range rec.MountPoints {
		out = append(out, container.MountPoint{
			Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation,
		})
	}
	slices.SortFunc(out, func(a, b container.MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

// volumeService returns s as a VolumeService, nil when s is nil (so that
// a daemon without stage 3.15 sees no service, not a nil pointer).
func volumeService(s *volumes.Service) VolumeService {
	if s == nil {
		return nil
	}
	return s
}
