package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/sys/mount"
	"github.com/moby/sys/mountinfo"
	"go.uber.org/zap"
)

const (
	// dataDirName is the directory of a volume's data, as dockerd's.
	dataDirName = "_data"
	// metaFileName is the file of a volume's metadata.
	metaFileName = "volume.json"
	// stagePrefix and trashPrefix start the names of the directories of
	// a volume being created or removed; volume names start with a
	// letter or digit, so they never collide.
	stagePrefix = ".create-"
	trashPrefix = ".remove-"
)

// EventLogger records volume events; *events.Bus (modules/events) is one.
// Actions are create, destroy, mount, unmount and prune, as dockerd's.
type EventLogger interface {
	// Log records one event of type typ.
	Log(typ events.Type, action events.Action, actor events.Actor)
}

// Options configure a Service.
type Options struct {
	// Root is the volumes directory, <effective data root>/volumes.
	// It is created 0701 when missing.
	Root string
	// UID and GID own every volume's _data directory: the containers'
	// root on the host (the remapped root with --userns-remap, else 0).
	UID, GID int
	// Logger logs what the service cannot return (a volume skipped at
	// load, a leftover it could not clear). Nil logs nothing.
	Logger *zap.Logger
	// Events receives the volume events. Nil records none.
	Events EventLogger
}

// Service is the volume service with the local driver. It is safe for
// concurrent use.
type Service struct {
	root     string
	uid, gid int
	log      *zap.Logger
	events   EventLogger

	mu   sync.Mutex
	vols map[string]*vol

	pruning atomic.Bool

	// mountFn and unmountFn mount and unmount a volume's device on its
	// data directory (moby/sys/mount's, replaced in tests).
	mountFn   func(device, target, fstype, options string) error
	unmountFn func(target string) error
}

// vol is one volume and its state. Its fields other than meta and dir
// are guarded by Service.mu.
type vol struct {
	meta metadata
	dir  string // <root>/<name>
	// refs are the holders of the volume (container IDs): while there is
	// one, it cannot be removed.
	refs map[string]struct{}
	// mounts counts the active mounts per holder, active their sum.
	mounts map[string]int
	active int
	// mounted says the device of the options is mounted on _data.
	mounted bool
}

// metadata is a volume's volume.json.
type metadata struct {
	Name      string            `json:"Name"`
	Driver    string            `json:"Driver"`
	Labels    map[string]string `json:"Labels"`
	Options   map[string]string `json:"Options"`
	CreatedAt time.Time         `json:"CreatedAt"`
	Scope     string            `json:"Scope"`
}

func (v *vol) path() string { return filepath.Join(v.dir, dataDirName) }

// needsMount reports whether the options mount a filesystem on _data, as
// dockerd's local driver: a type or a device is given.
func (v *vol) needsMount() bool {
	return v.meta.Options["type"] != "" || v.meta.Options["device"] != ""
}

// api is the volume as the Engine API shows it. Maps are copied.
func (v *vol) api() volume.Volume {
	return volume.Volume{
		Name:       v.meta.Name,
		Driver:     v.meta.Driver,
		Mountpoint: v.path(),
		CreatedAt:  v.meta.CreatedAt.Local().Format(time.RFC3339),
		Labels:     maps.Clone(v.meta.Labels),
		Options:    maps.Clone(v.meta.Options),
		Scope:      v.meta.Scope,
	}
}

func (v *vol) sortedRefs() []string { return slices.Sorted(maps.Keys(v.refs)) }

// New opens the volumes directory o.Root, creating it 0701 when missing
// (symbolic links in its path are resolved), and loads the volumes in it. Directories of volumes half created or
// half removed by a previous run are cleared. A volume whose metadata
// cannot be read is skipped with a warning and left on disk; a directory
// with a _data directory and no metadata (dockerd's layout) is taken as a
// local volume without options. A volume whose options mount a device
// and whose _data is still mounted is taken as mounted, as dockerd's.
func New(o Options) (*Service, error) {
	if o.Root == "" {
		return nil, errors.New("volumes: no root directory")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("volumes root %q: %w", o.Root, err)
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Service{
		root: root, uid: o.UID, gid: o.GID, log: log, events: o.Events,
		vols:      map[string]*vol{},
		mountFn:   mount.Mount,
		unmountFn: mount.Unmount,
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes root: %w", err)
	}
	if err := os.Chmod(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes root: %w", err)
	}
	// Mount points read from /proc are real paths: the root must be one
	// too, so that the check for mounts before a removal sees them.
	if s.root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("volumes root: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root returns the volumes directory.
func (s *Service) Root() string { return s.root }

// RootPair returns the host uid and gid that own the volumes' data: the
// containers' root (the remapped root with --userns-remap, else 0, 0).
// The container engine gives the host directories it creates for binds
// the same owner, as dockerd.
func (s *Service) RootPair() (uid, gid int) { return s.uid, s.gid }

// load reads the volumes directory.
func (s *Service) load() error {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("volumes root: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(s.root, name)
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(name, stagePrefix) || strings.HasPrefix(name, trashPrefix) {
			s.clearLeftover(dir)
			continue
		}
		v, err := loadVolume(dir, name)
		if err != nil {
			s.log.Warn("volume skipped", zap.String("volume", name), zap.Error(err))
			continue
		}
		if v == nil {
			continue
		}
		if v.needsMount() {
			if mounted, err := mountinfo.Mounted(v.path()); err == nil && mounted {
				v.mounted = true
			}
		}
		s.vols[name] = v
	}
	return nil
}

// clearLeftover removes the directory of a volume half created or half
// removed, unless something is mounted in it.
func (s *Service) clearLeftover(dir string) {
	if busy, err := hasMounts(dir); err != nil || busy {
		s.log.Warn("leftover volume directory has mounts; left alone", zap.String("path", dir), zap.Error(err))
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("leftover volume directory not removed", zap.String("path", dir), zap.Error(err))
	}
}

// CreateOptions are the parameters of Create.
type CreateOptions struct {
	// Name is the volume's name; empty creates an anonymous volume with
	// a random 64-hex name and the label com.docker.volume.anonymous.
	Name string
	// Driver is the volume driver: "" or "local".
	Driver string
	// DriverOpts are the local driver's options: type, device, o.
	DriverOpts map[string]string
	// Labels are the volume's labels.
	Labels map[string]string
	// Reference, when set, is recorded as a holder of the volume in the
	// same step (a container ID), so that no prune removes it between its
	// creation and its first use.
	Reference string
}

// Create creates a volume, as dockerd: a name already in use returns the
// existing volume unchanged (its labels and options are not compared)
// and logs no event; otherwise the volume is created and the create
// event logged. created reports which.
//
// Errors are *OpError "create <name>: …": an unknown driver (NotFound,
// `error looking up volume plugin foo: plugin "foo" not found`), an
// invalid name or option (InvalidArgument, dockerd's texts), or a failure
// on disk, which leaves nothing behind.
func (s *Service) Create(ctx context.Context, o CreateOptions) (v volume.Volume, created bool, err error) {
	if err := ctx.Err(); err != nil {
		return volume.Volume{}, false, err
	}
	name, labels := o.Name, o.Labels
	if name == "" {
		name = randomID()
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Driver != "" && o.Driver != DriverName {
		return volume.Volume{}, false, &OpError{Op: "create", Name: name,
			Err: notFoundError{fmt.Errorf("error looking up volume plugin %s: plugin %q not found", o.Driver, o.Driver)}}
	}
	if existing, ok := s.vols[name]; ok {
		s.refLocked(existing, o.Reference)
		return existing.api(), false, nil
	}
	if err := validateName(name); err != nil {
		return volume.Volume{}, false, &OpError{Op: "create", Name: name, Err: err}
	}
	if err := validateOpts(o.DriverOpts); err != nil {
		return volume.Volume{}, false, &OpError{Op: "create", Name: name, Err: err}
	}
	meta := metadata{
		Name: name, Driver: DriverName, Scope: LocalScope,
		Labels: maps.Clone(labels), Options: maps.Clone(o.DriverOpts),
		CreatedAt: time.Now().UTC(),
	}
	nv, err := s.createOnDisk(meta)
	if err != nil {
		return volume.Volume{}, false, &OpError{Op: "create", Name: name, Err: err}
	}
	s.vols[name] = nv
	s.refLocked(nv, o.Reference)
	s.event(events.ActionCreate, name, nil)
	return nv.api(), true, nil
}

// createOnDisk makes the volume's directory in a staging directory and
// renames it into place.
func (s *Service) createOnDisk(meta metadata) (*vol, error) {
	stage, err := os.MkdirTemp(s.root, stagePrefix)
	if err != nil {
		return nil, systemError{fmt.Errorf("create volume directory: %w", err)}
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()
	// The volume's directory needs no access by the remapped root; its
	// _data does.
	if err := os.Chmod(stage, 0o701); err != nil {
		return nil, systemError{fmt.Errorf("create volume directory: %w", err)}
	}
	data := filepath.Join(stage, dataDirName)
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, systemError{fmt.Errorf("create volume data directory: %w", err)}
	}
	if err := os.Chmod(data, 0o755); err != nil {
		return nil, systemError{fmt.Errorf("create volume data directory: %w", err)}
	}
	if s.uid != os.Geteuid() || s.gid != os.Getegid() {
		if err := os.Chown(data, s.uid, s.gid); err != nil {
			return nil, systemError{fmt.Errorf("create volume data directory: %w", err)}
		}
	}
	if err := writeMeta(stage, meta); err != nil {
		return nil, systemError{err}
	}
	dir := filepath.Join(s.root, meta.Name)
	if err := os.Rename(stage, dir); err != nil {
		return nil, systemError{fmt.Errorf("create volume directory: %w", err)}
	}
	done = true
	if err := syncDir(s.root); err != nil {
		s.log.Warn("volumes directory not synced", zap.Error(err))
	}
	return &vol{meta: meta, dir: dir, refs: map[string]struct{}{}, mounts: map[string]int{}}, nil
}

// Get returns the volume name: *OpError "get <name>: no such volume"
// (NotFound) when there is none.
func (s *Service) Get(ctx context.Context, name string) (volume.Volume, error) {
	if err := ctx.Err(); err != nil {
		return volume.Volume{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return volume.Volume{}, noSuchVolume(name)
	}
	return v.api(), nil
}

func noSuchVolume(name string) error { return &OpError{Op: "get", Name: name, Err: ErrNoSuchVolume} }

// List returns the volumes that match filters, sorted by name, as
// dockerd's GET /volumes: dangling (true/1: no references, false/0:
// referenced), driver (exact), name (a value equal to the name or an
// unanchored regular expression matching it) and label (key or
// key=value, all must match). Another filter is InvalidArgument
// ("invalid filter 'foo'"). warnings are always nil: the local driver
// cannot fail to list.
func (s *Service) List(ctx context.Context, filters Filters) (vols []volume.Volume, warnings []string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	match, err := filters.compile(acceptedListFilters)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vols = []volume.Volume{}
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		v := s.vols[name]
		if match(v, len(v.refs)) {
			vols = append(vols, v.api())
		}
	}
	return vols, nil, nil
}

// Remove removes the volume name and its data, as dockerd: a volume with
// references is refused even with force (*OpError "remove <name>: volume
// is in use - [<refs>]", Conflict); a missing one is *OpError "get
// <name>: no such volume" (NotFound), or no error with force. The
// destroy event is logged.
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	v, ok := s.vols[name]
	if !ok {
		s.mu.Unlock()
		if force {
			return nil
		}
		return noSuchVolume(name)
	}
	if len(v.refs) > 0 {
		s.mu.Unlock()
		return &OpError{Op: "remove", Name: name, Err: ErrVolumeInUse, Refs: v.sortedRefs()}
	}
	trash, err := s.detachLocked(v)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.event(events.ActionDestroy, name, nil)
	s.removeTrash(trash)
	return nil
}

// detachLocked takes an unreferenced volume out of the service: its
// device unmounted, its directory renamed aside. It refuses when anything
// is still mounted in the directory, so that removing the data never
// reaches into a mounted filesystem. The caller removes the returned
// directory.
func (s *Service) detachLocked(v *vol) (string, error) {
	name := v.meta.Name
	if v.active > 0 {
		return "", &OpError{Op: "remove", Name: name, Err: conflictError{errors.New("volume has active mounts")}}
	}
	if v.mounted {
		if err := s.unmountLocked(v); err != nil {
			return "", &OpError{Op: "remove", Name: name, Err: err}
		}
	}
	busy, err := hasMounts(v.dir)
	if err != nil {
		return "", &OpError{Op: "remove", Name: name, Err: systemError{err}}
	}
	if busy {
		return "", &OpError{Op: "remove", Name: name, Err: conflictError{errors.New("volume has active mounts")}}
	}
	trash := filepath.Join(s.root, trashPrefix+name+"-"+randomID()[:12])
	if err := os.Rename(v.dir, trash); err != nil {
		return "", &OpError{Op: "remove", Name: name, Err: systemError{fmt.Errorf("error removing volume path: %w", err)}}
	}
	if err := syncDir(s.root); err != nil {
		s.log.Warn("volumes directory not synced", zap.Error(err))
	}
	delete(s.vols, name)
	return trash, nil
}

// removeTrash deletes a detached volume's directory; what cannot be
// deleted now is cleared at the next start.
func (s *Service) removeTrash(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("removed volume's data not deleted", zap.String("path", dir), zap.Error(err))
	}
}

// Prune removes the unreferenced local volumes without mount options that
// match filters, as dockerd's POST /volumes/prune: only anonymous ones
// unless the filter all is true; label and label! narrow them. Another
// filter is InvalidArgument ("invalid filter 'name'"); a second prune
// while one runs is Conflict ("a prune operation is already running").
// SpaceReclaimed is the bytes of the removed volumes' files. A volume
// that cannot be removed is skipped and logged. The destroy event of each
// removed volume and one prune event (attribute reclaimed) are logged.
func (s *Service) Prune(ctx context.Context, filters Filters) (volume.PruneReport, error) {
	if !s.pruning.CompareAndSwap(false, true) {
		return volume.PruneReport{}, conflictError{errors.New("a prune operation is already running")}
	}
	defer s.pruning.Store(false)
	f, err := filters.pruneFilters()
	if err != nil {
		return volume.PruneReport{}, err
	}
	match, err := f.compile(acceptedPruneFilters)
	if err != nil {
		return volume.PruneReport{}, err
	}
	type candidate struct{ name, path string }
	var cands []candidate
	s.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		v := s.vols[name]
		if len(v.refs) == 0 && v.meta.Driver == DriverName && len(v.meta.Options) == 0 && match(v, 0) {
			cands = append(cands, candidate{name, v.path()})
		}
	}
	s.mu.Unlock()

	rep := volume.PruneReport{VolumesDeleted: []string{}}
	for _, c := range cands {
		if ctx.Err() != nil {
			break
		}
		size, err := dirSize(ctx, c.path)
		if err != nil {
			s.log.Warn("could not determine size of volume", zap.String("volume", c.name), zap.Error(err))
		}
		s.mu.Lock()
		v, ok := s.vols[c.name]
		if !ok || len(v.refs) > 0 {
			s.mu.Unlock()
			continue
		}
		trash, err := s.detachLocked(v)
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("could not remove volume", zap.String("volume", c.name), zap.Error(err))
			continue
		}
		s.event(events.ActionDestroy, c.name, nil)
		s.removeTrash(trash)
		if size > 0 {
			rep.SpaceReclaimed += uint64(size)
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, c.name)
	}
	s.event(events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return rep, err
	}
	return rep, nil
}

// Acquire records ref (a container ID) as a holder of the volume name:
// until Release, the volume cannot be removed or pruned, and dangling
// lists it as used. A missing volume is *OpError "get <name>: no such
// volume" (NotFound); an empty ref is InvalidArgument. Holders are not
// persisted: the daemon acquires its containers' volumes again at start.
func (s *Service) Acquire(name, ref string) error {
	if ref == "" {
		return invalidf("volume %s: empty reference", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return noSuchVolume(name)
	}
	s.refLocked(v, ref)
	return nil
}

// Release forgets ref as a holder of the volume name. Releasing what was
// never acquired, or a missing volume, does nothing, as dockerd. Active
// mounts of ref are not undone: Unmount them first.
func (s *Service) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		delete(v.refs, ref)
	}
}

// Refs returns the holders of the volume name, sorted: *OpError "get
// <name>: no such volume" (NotFound) when there is none.
func (s *Service) Refs(name string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, noSuchVolume(name)
	}
	return v.sortedRefs(), nil
}

func (s *Service) refLocked(v *vol, ref string) {
	if ref != "" {
		v.refs[ref] = struct{}{}
	}
}

// Mount makes the volume name available to ref (a container ID) and
// returns its data directory, the path to bind into the container. It
// acquires the volume for ref (see Acquire) and counts one active mount;
// the first active mount of a volume with mount options mounts them on
// the data directory, as dockerd's local driver (type=tmpfs,
// device=tmpfs, o=size=10m; type=none, o=bind, device=/srv/data). The
// mount event is logged with the attributes driver and container.
//
// Errors: a missing volume (*OpError "get <name>: no such volume",
// NotFound), an empty ref (InvalidArgument), a mount that fails ("failed
// to mount local volume: …", Internal; nothing is counted).
func (s *Service) Mount(name, ref string) (string, error) {
	return s.MountFor(name, ref, nil)
}

// MountFor is Mount with attrs added to the mount event's attributes:
// the container engine passes dockerd's destination, read/write and
// propagation of the container's mount point.
func (s *Service) MountFor(name, ref string, attrs map[string]string) (string, error) {
	if ref == "" {
		return "", invalidf("volume %s: empty reference", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", noSuchVolume(name)
	}
	if err := s.mountLocked(v, ref); err != nil {
		return "", err
	}
	a := map[string]string{"container": ref}
	for k, val := range attrs {
		if k != "container" && k != "driver" {
			a[k] = val
		}
	}
	s.event(events.ActionMount, name, a)
	return v.path(), nil
}

// mountLocked mounts v's options when it is not mounted yet and counts
// one active mount by ref, a holder from now on.
func (s *Service) mountLocked(v *vol, ref string) error {
	if v.needsMount() && !v.mounted {
		opts := v.meta.Options
		if opts["device"] == "" {
			return systemError{errors.New("missing device in volume options")}
		}
		if err := s.mountFn(opts["device"], v.path(), opts["type"], opts["o"]); err != nil {
			return systemError{fmt.Errorf("failed to mount local volume: %w", hidePassword(err, opts["o"]))}
		}
		v.mounted = true
	}
	v.active++
	v.mounts[ref]++
	v.refs[ref] = struct{}{}
	return nil
}

// Unmount undoes one Mount of the volume name by ref: the last active
// mount of a volume with mount options unmounts them. ref stays a holder
// until Release. An Unmount without a matching Mount does nothing, as
// dockerd. The unmount event is logged with the attributes driver and
// container. Errors: a missing volume (NotFound), an unmount that fails
// while the data directory stays mounted (Internal; the mount is no
// longer counted, so that the volume can be unmounted again later).
func (s *Service) Unmount(name, ref string) error {
	return s.unmount(name, ref, true)
}

// unmount is Unmount, logging the event when event is set.
func (s *Service) unmount(name, ref string, event bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return noSuchVolume(name)
	}
	if v.mounts[ref] == 0 {
		s.log.Warn("unmount without mount", zap.String("volume", name), zap.String("ref", ref))
		return nil
	}
	if v.mounts[ref]--; v.mounts[ref] == 0 {
		delete(v.mounts, ref)
	}
	v.active--
	if event {
		s.event(events.ActionUnmount, name, map[string]string{"container": ref})
	}
	if v.active > 0 || !v.mounted {
		return nil
	}
	return s.unmountLocked(v)
}

// unmountLocked unmounts the device of v's options.
func (s *Service) unmountLocked(v *vol) error {
	if err := s.unmountFn(v.path()); err != nil {
		if mounted, merr := mountinfo.Mounted(v.path()); mounted || merr != nil {
			return systemError{fmt.Errorf("unmount volume %s: %w", v.meta.Name, err)}
		}
	}
	v.mounted = false
	return nil
}

// Close unmounts the devices of every volume with mount options still
// mounted (their users are gone when the daemon stops). It is the stage's
// stop hook.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		v := s.vols[name]
		if !v.mounted {
			continue
		}
		if v.active > 0 {
			s.log.Warn("unmounting a volume still in use", zap.String("volume", name), zap.Int("active", v.active))
		}
		if err := s.unmountLocked(v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// event logs a volume event; the driver attribute is added to volume
// events that name a volume.
func (s *Service) event(action events.Action, name string, attrs map[string]string) {
	if s.events == nil {
		return
	}
	a := map[string]string{}
	if name != "" {
		a["driver"] = DriverName
	}
	maps.Copy(a, attrs)
	s.events.Log(events.VolumeEventType, action, events.Actor{ID: name, Attributes: a})
}

// hidePassword masks a password= mount option in a mount error, as
// dockerd.
func hidePassword(err error, opts string) error {
	for _, o := range strings.Split(opts, ",") {
		if pw, ok := strings.CutPrefix(o, "password="); ok && pw != "" {
			return errors.New(strings.Replace(err.Error(), "password="+pw, "password=********", 1))
		}
	}
	return err
}

// randomID returns 64 random hex digits whose 12-digit prefix is not all
// decimal digits (it would read as a number), as dockerd's IDs.
func randomID() string {
	b := make([]byte, 32)
	for {
		rand.Read(b)
		id := hex.EncodeToString(b)
		if _, err := strconv.ParseInt(id[:12], 10, 64); err == nil {
			continue
		}
		return id
	}
}

// hasMounts reports whether anything is mounted at or below dir.
func hasMounts(dir string) (bool, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	return len(ms) > 0, nil
}
