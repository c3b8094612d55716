package volumes

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/mount"
	sysmount "github.com/moby/sys/mount"
)

// MountPoint is one mount of a container, validated by ParseBind,
// ParseMount or ParseTmpfs: what the container engine needs to set it up.
type MountPoint struct {
	// Type is mount.TypeBind, mount.TypeVolume or mount.TypeTmpfs.
	Type mount.Type
	// Source is a bind's host path, cleaned; empty for the other types.
	Source string
	// Name is a volume's name; empty for an anonymous volume, which the
	// engine creates with Create and an empty name.
	Name string
	// Driver is a volume's driver; empty means local.
	Driver string
	// Destination is the absolute path in the container, cleaned.
	Destination string
	// RW is false for a read-only mount.
	RW bool
	// Mode is the mode of a -v spec as given ("ro,z", "nocopy"); empty
	// for --mount and --tmpfs.
	Mode string
	// Propagation is a bind's propagation, rprivate unless given.
	Propagation mount.Propagation
	// CopyData says that an empty volume is first populated with the
	// image's content at Destination (false with nocopy or
	// volume-nocopy).
	CopyData bool
	// CreateSource says that a missing bind source is created as a
	// directory, as -v does; --mount refuses it instead.
	CreateSource bool
	// TmpfsOptions are a tmpfs's mount options as dockerd passes them to
	// the runtime: noexec, nosuid, nodev and rprivate, then the given
	// ones, merged so that a later option wins ("exec" over "noexec").
	TmpfsOptions []string
	// Spec is the mount as a mount.Mount (for -v, the one the spec
	// amounts to).
	Spec mount.Mount
}

// VolumeCreateOptions returns what Create needs to create the volume of a
// volume mount: its name (empty for an anonymous volume), driver, driver
// options and labels (--mount's volume-driver, volume-opt, volume-label).
func (m *MountPoint) VolumeCreateOptions() CreateOptions {
	o := CreateOptions{Name: m.Name, Driver: m.Driver}
	if vo := m.Spec.VolumeOptions; vo != nil {
		o.Labels = maps.Clone(vo.Labels)
		if vo.DriverConfig != nil {
			o.DriverOpts = maps.Clone(vo.DriverConfig.Options)
		}
	}
	return o
}

// ParseBind parses a -v (HostConfig.Binds) spec as dockerd's Linux
// parser: [source:]destination[:mode]. A source that is an absolute path
// makes a bind mount (its missing source is created, CreateSource), any
// other a named volume, none an anonymous volume. mode is a comma list of
// at most one each of rw/ro, z/Z, a propagation (private, rprivate,
// shared, rshared, slave, rslave), nocopy and a consistency (consistent,
// cached, delegated). volumeDriver (--volume-driver) is the driver of
// named and anonymous volumes.
//
// Errors are InvalidArgument with dockerd's texts: "invalid volume
// specification: '<spec>'" (too many parts, an empty first part,
// destination:mode), "invalid mode: <mode>", and "invalid volume
// specification: '<spec>': invalid mount config for type \"bind\":
// invalid mount path: 'x' mount path must be absolute" and the like.
func ParseBind(raw, volumeDriver string) (*MountPoint, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return nil, errInvalidSpec(raw)
	}
	var spec mount.Mount
	var mode string
	switch len(arr) {
	case 1:
		spec.Target = arr[0]
	case 2:
		if validMode(arr[1]) {
			// destination:mode — a volume cannot have a mode alone.
			return nil, errInvalidSpec(raw)
		}
		spec.Source, spec.Target = arr[0], arr[1]
	case 3:
		spec.Source, spec.Target, mode = arr[0], arr[1], arr[2]
	default:
		return nil, errInvalidSpec(raw)
	}
	if !validMode(mode) {
		return nil, invalidf("invalid mode: %s", mode)
	}
	if path.IsAbs(spec.Source) {
		spec.Type = mount.TypeBind
	} else {
		spec.Type = mount.TypeVolume
	}
	spec.ReadOnly = !readWrite(mode)
	if volumeDriver != "" && spec.Type == mount.TypeVolume {
		spec.VolumeOptions = &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: volumeDriver}}
	}
	if modeHas(mode, "nocopy") {
		if spec.VolumeOptions == nil {
			spec.VolumeOptions = &mount.VolumeOptions{}
		}
		spec.VolumeOptions.NoCopy = true
	}
	if p, ok := modePropagation(mode); ok {
		spec.BindOptions = &mount.BindOptions{Propagation: p}
	}
	mp, err := parseSpec(spec, false)
	if err != nil {
		return nil, invalidf("%v: %v", errInvalidSpec(raw), err)
	}
	mp.Mode = mode
	mp.CreateSource = mp.Type == mount.TypeBind
	return mp, nil
}

// ParseMount validates a --mount (HostConfig.Mounts) entry as dockerd's
// Linux parser. A bind's source must exist unless
// BindOptions.CreateMountpoint is set. Errors are InvalidArgument worded
// "invalid mount config for type \"<type>\": <reason>", as dockerd:
// "field Target must not be empty", "invalid specification: destination
// can't be '/'", "invalid mount path: 'x' mount path must be absolute",
// "bind source path does not exist: /x", "field Source must not be
// specified" (a tmpfs with a source), "field VolumeOptions must not be
// specified" (options of another type), "invalid propagation mode: x",
// "must not set Subpath when using anonymous volumes", "subpath must be
// a relative path within the volume", "invalid option: x" (a tmpfs
// option other than exec/noexec), "mount type unknown".
func ParseMount(m mount.Mount) (*MountPoint, error) {
	mp, err := parseSpec(m, true)
	if err != nil {
		return nil, invalidParam{err}
	}
	return mp, nil
}

// ParseTmpfs validates a --tmpfs (HostConfig.Tmpfs) entry: dest must be
// absolute and not /, options a comma list of mount flags (ro, exec,
// nosuid, …) and tmpfs options (size, mode, uid, gid, nr_inodes,
// nr_blocks, mpol) given as key=value. Errors are InvalidArgument:
// "invalid mount path: 'x' mount path must be absolute", "invalid
// specification: destination can't be '/'", "invalid tmpfs option
// [\"foo\"]".
func ParseTmpfs(dest, options string) (*MountPoint, error) {
	if err := validateNotRoot(dest); err != nil {
		return nil, invalidParam{err}
	}
	if err := validateAbsolute(dest); err != nil {
		return nil, invalidParam{err}
	}
	opts, err := tmpfsOptions(options)
	if err != nil {
		return nil, invalidParam{err}
	}
	rw := true
	for _, o := range strings.Split(options, ",") {
		switch o {
		case "ro":
			rw = false
		case "rw":
			rw = true
		}
	}
	return &MountPoint{
		Type:         mount.TypeTmpfs,
		Destination:  path.Clean(dest),
		RW:           rw,
		TmpfsOptions: opts,
		Spec:         mount.Mount{Type: mount.TypeTmpfs, Target: dest, ReadOnly: !rw},
	}, nil
}

// ParseVolumesFrom parses a --volumes-from (HostConfig.VolumesFrom) entry,
// container[:mode], as dockerd: mode defaults to rw and may not carry a
// propagation or nocopy. Errors are InvalidArgument: "volumes-from
// specification cannot be an empty string", "invalid mode: <mode>".
func ParseVolumesFrom(spec string) (container, mode string, err error) {
	if spec == "" {
		return "", "", invalidParam{errors.New("volumes-from specification cannot be an empty string")}
	}
	id, mode, _ := strings.Cut(spec, ":")
	if mode == "" {
		return id, "rw", nil
	}
	if !validMode(mode) {
		return "", "", invalidf("invalid mode: %s", mode)
	}
	if _, ok := modePropagation(mode); ok || modeHas(mode, "nocopy") {
		return "", "", invalidf("invalid mode: %s", mode)
	}
	return id, mode, nil
}

// ParseMounts parses a container's -v, --mount and --tmpfs entries
// (HostConfig.Binds, Mounts and Tmpfs) with ParseBind, ParseMount and
// ParseTmpfs, returned in that order (tmpfs sorted by destination), and
// refuses two of
// them at one destination, as dockerd: "Duplicate mount point: /data"
// (InvalidArgument). Mounts inherited with --volumes-from are the
// engine's to merge: dockerd lets these entries override them.
func ParseMounts(binds []string, mounts []mount.Mount, tmpfs map[string]string, volumeDriver string) ([]*MountPoint, error) {
	var out, tmpfsMounts []*MountPoint
	seen := map[string]bool{}
	add := func(mp *MountPoint) error {
		if seen[mp.Destination] {
			return invalidf("Duplicate mount point: %s", mp.Destination)
		}
		seen[mp.Destination] = true
		return nil
	}
	for _, dest := range slices.Sorted(maps.Keys(tmpfs)) {
		mp, err := ParseTmpfs(dest, tmpfs[dest])
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
		tmpfsMounts = append(tmpfsMounts, mp)
	}
	for _, b := range binds {
		mp, err := ParseBind(b, volumeDriver)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	for _, m := range mounts {
		mp, err := ParseMount(m)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	return append(out, tmpfsMounts...), nil
}

// parseSpec validates cfg and makes its MountPoint (dockerd's
// parseMountSpec).
func parseSpec(cfg mount.Mount, bindSourceMustExist bool) (*MountPoint, error) {
	if err := validateSpec(&cfg, bindSourceMustExist); err != nil {
		return nil, err
	}
	mp := &MountPoint{
		Type:        cfg.Type,
		Destination: path.Clean(cfg.Target),
		RW:          !cfg.ReadOnly,
		Spec:        cfg,
	}
	switch cfg.Type {
	case mount.TypeVolume:
		mp.Name = cfg.Source
		mp.CopyData = true
		if vo := cfg.VolumeOptions; vo != nil {
			if vo.DriverConfig != nil {
				mp.Driver = vo.DriverConfig.Name
			}
			if vo.NoCopy {
				mp.CopyData = false
			}
		}
	case mount.TypeBind:
		mp.Source = path.Clean(cfg.Source)
		mp.Propagation = mount.PropagationRPrivate
		if cfg.BindOptions != nil && cfg.BindOptions.Propagation != "" {
			mp.Propagation = cfg.BindOptions.Propagation
		}
		mp.CreateSource = cfg.BindOptions != nil && cfg.BindOptions.CreateMountpoint
	case mount.TypeTmpfs:
		data, _ := convertTmpfsOptions(cfg.TmpfsOptions, cfg.ReadOnly)
		mp.TmpfsOptions, _ = tmpfsOptions(data)
	}
	return mp, nil
}

// mountConfigError is dockerd's errMountConfig: "invalid mount config for
// type "bind": <reason>".
type mountConfigError struct {
	typ mount.Type
	err error
}

func (e *mountConfigError) Error() string {
	return fmt.Sprintf("invalid mount config for type %q: %v", e.typ, e.err)
}

func (e *mountConfigError) Unwrap() error { return e.err }

func errInvalidSpec(raw string) error {
	return invalidf("invalid volume specification: '%s'", raw)
}

func errExtraField(name string) error { return fmt.Errorf("field %s must not be specified", name) }

func errMissingField(name string) error { return fmt.Errorf("field %s must not be empty", name) }

// validateSpec is dockerd's validateMountConfigImpl for the types this
// daemon supports (bind, volume, tmpfs).
func validateSpec(m *mount.Mount, bindSourceMustExist bool) error {
	bad := func(err error) error { return &mountConfigError{m.Type, err} }
	if m.Target == "" {
		return bad(errMissingField("Target"))
	}
	if err := validateNotRoot(m.Target); err != nil {
		return bad(err)
	}
	if err := validateAbsolute(m.Target); err != nil {
		return bad(err)
	}
	extra := func(fields ...string) error {
		set := map[string]bool{
			"BindOptions":   m.BindOptions != nil,
			"VolumeOptions": m.VolumeOptions != nil,
			"ImageOptions":  m.ImageOptions != nil,
			"TmpfsOptions":  m.TmpfsOptions != nil,
		}
		for _, f := range fields {
			if set[f] {
				return bad(errExtraField(f))
			}
		}
		return nil
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return bad(errMissingField("Source"))
		}
		if o := m.BindOptions; o != nil && o.Propagation != "" && !propagations[o.Propagation] {
			return bad(fmt.Errorf("invalid propagation mode: %s", o.Propagation))
		}
		if err := extra("VolumeOptions", "ImageOptions", "TmpfsOptions"); err != nil {
			return err
		}
		if err := validateAbsolute(m.Source); err != nil {
			return bad(err)
		}
		if bindSourceMustExist {
			_, err := os.Stat(m.Source)
			if err != nil && !os.IsNotExist(err) {
				return bad(err)
			}
			if err != nil && (m.BindOptions == nil || !m.BindOptions.CreateMountpoint) {
				return bad(fmt.Errorf("bind source path does not exist: %s", m.Source))
			}
		}
	case mount.TypeVolume:
		if err := extra("BindOptions", "ImageOptions", "TmpfsOptions"); err != nil {
			return err
		}
		if o := m.VolumeOptions; o != nil && o.Subpath != "" {
			if m.Source == "" {
				return bad(errors.New("must not set Subpath when using anonymous volumes"))
			}
			if !filepath.IsLocal(o.Subpath) {
				return bad(errors.New("subpath must be a relative path within the volume"))
			}
		}
	case mount.TypeTmpfs:
		if err := extra("BindOptions", "VolumeOptions", "ImageOptions"); err != nil {
			return err
		}
		if m.Source != "" {
			return bad(errExtraField("Source"))
		}
		if _, err := convertTmpfsOptions(m.TmpfsOptions, m.ReadOnly); err != nil {
			return bad(err)
		}
	default:
		return bad(errors.New("mount type unknown"))
	}
	return nil
}

func validateNotRoot(p string) error {
	if path.Clean(strings.ReplaceAll(p, `\`, `/`)) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	return nil
}

func validateAbsolute(p string) error {
	p = strings.ReplaceAll(p, `\`, `/`)
	if path.IsAbs(p) {
		return nil
	}
	return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
}

// propagations are the bind propagation modes of Linux.
var propagations = map[mount.Propagation]bool{
	mount.PropagationPrivate: true, mount.PropagationRPrivate: true,
	mount.PropagationSlave: true, mount.PropagationRSlave: true,
	mount.PropagationShared: true, mount.PropagationRShared: true,
}

// validMode checks a -v mode as dockerd's linuxValidMountMode: known
// words, at most one of each kind.
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, consistency int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "rw" || o == "ro":
			rw++
		case o == "z" || o == "Z":
			label++
		case propagations[mount.Propagation(o)]:
			prop++
		case o == "nocopy":
			cp++
		case o == string(mount.ConsistencyFull) || o == string(mount.ConsistencyCached) || o == string(mount.ConsistencyDelegated):
			consistency++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && consistency <= 1
}

// readWrite reports whether a valid mode is read-write.
func readWrite(mode string) bool { return validMode(mode) && !modeHas(mode, "ro") }

func modeHas(mode, word string) bool { return slices.Contains(strings.Split(mode, ","), word) }

// modePropagation returns the propagation a mode names.
func modePropagation(mode string) (mount.Propagation, bool) {
	for _, o := range strings.Split(mode, ",") {
		if propagations[mount.Propagation(o)] {
			return mount.Propagation(o), true
		}
	}
	return "", false
}

// convertTmpfsOptions turns --mount's tmpfs options into mount data, as
// dockerd's ConvertTmpfsOptions: ro, mode=<octal>, size=<n>[kmg] (the
// largest unit that divides it), then the options (exec or noexec only).
func convertTmpfsOptions(opt *mount.TmpfsOptions, readOnly bool) (string, error) {
	var raw []string
	if readOnly {
		raw = append(raw, "ro")
	}
	if opt != nil && opt.Mode != 0 {
		raw = append(raw, fmt.Sprintf("mode=%o", opt.Mode))
	}
	if opt != nil && opt.SizeBytes != 0 {
		size, suffix := opt.SizeBytes, ""
		for _, u := range []struct {
			suffix string
			div    int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%u.div == 0 {
				size, suffix = size/u.div, u.suffix
				break
			}
		}
		raw = append(raw, fmt.Sprintf("size=%d%s", size, suffix))
	}
	if opt != nil {
		for _, o := range opt.Options {
			if len(o) < 1 || len(o) > 2 {
				return "", errors.New("invalid option array length")
			}
			if o[0] != "exec" && o[0] != "noexec" {
				return "", errors.New("invalid option: " + o[0])
			}
			if len(o) == 1 {
				raw = append(raw, o[0])
			} else {
				raw = append(raw, o[0]+"="+o[1])
			}
		}
	}
	return strings.Join(raw, ","), nil
}

// tmpfsDefaults are the options every tmpfs of a container starts from,
// as dockerd's.
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev", string(mount.PropagationRPrivate)}

// tmpfsOptions merges the defaults and data (a comma list) as dockerd
// does before handing a tmpfs to the runtime; an unknown option is
// "invalid tmpfs option [\"foo\"]".
func tmpfsOptions(data string) ([]string, error) {
	opts := slices.Clone(tmpfsDefaults)
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	return sysmount.MergeTmpfsOptions(opts)
}
