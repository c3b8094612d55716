package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/user"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

const (
	// RemapDefault is the --userns-remap value that remaps to
	// RemapDefaultUser, creating the user when it is missing.
	RemapDefault = "default"
	// RemapDefaultUser is the user (and group) "default" remaps to, as
	// dockerd's.
	RemapDefaultUser = "dockremap"
	// subIDRangeSize is the size of the subordinate ID ranges given to a
	// created dockremap user, and subIDRangeStart the lowest start.
	subIDRangeSize  = 65536
	subIDRangeStart = 100000
)

// IDMap is one range of a user namespace's ID mapping, as libcontainer's
// and containers/storage's ID maps: Size IDs from ContainerID inside the
// namespace map to Size IDs from HostID outside.
type IDMap struct {
	ContainerID int64
	HostID      int64
	Size        int64
}

// Identity is the value of stage 3.5 userns-remap: the user namespace
// mapping containers run with. Without --userns-remap (or with "root") the
// maps are empty, containers' root is the host's root, and the stage is
// skipped with the reason.
type Identity struct {
	// User and Group are the remapped user and group names, such as
	// "dockremap"; empty when remapping is off.
	User  string
	Group string
	// UIDMaps and GIDMaps are the ranges from /etc/subuid and
	// /etc/subgid, in file order, mapped to consecutive container IDs
	// from 0. Both are empty when remapping is off.
	UIDMaps []IDMap
	GIDMaps []IDMap

	off string
}

// Enabled reports whether containers run in a remapped user namespace.
func (i Identity) Enabled() bool { return len(i.UIDMaps) > 0 }

// SkipReason says why remapping is off; empty when it is on.
func (i Identity) SkipReason() string {
	if i.Enabled() {
		return ""
	}
	return i.off
}

// RootPair returns the host uid and gid of the containers' root: 0, 0
// when remapping is off.
func (i Identity) RootPair() (uid, gid int) {
	u, _ := toHost(0, i.UIDMaps)
	g, _ := toHost(0, i.GIDMaps)
	return int(u), int(g)
}

// ToHost translates a container uid and gid to the host's. Without
// remapping they are unchanged; an ID outside the maps is an errdefs
// InvalidArgument error.
func (i Identity) ToHost(uid, gid int) (int, int, error) {
	u, ok := toHost(int64(uid), i.UIDMaps)
	if !ok {
		return -1, -1, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container uid %d is not mapped", uid))
	}
	g, ok := toHost(int64(gid), i.GIDMaps)
	if !ok {
		return -1, -1, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container gid %d is not mapped", gid))
	}
	return int(u), int(g), nil
}

func toHost(id int64, maps []IDMap) (int64, bool) {
	if len(maps) == 0 {
		return id, true
	}
	for _, m := range maps {
		if id >= m.ContainerID && id < m.ContainerID+m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return -1, false
}

// IdentityParams are the inputs of stage 3.5 userns-remap.
type IdentityParams struct {
	fx.In

	Config *config.Config
	Paths  Paths
	Logger *zap.Logger
	// Pidfile orders the stage after the pidfile: "default" may create a
	// user and subordinate ranges.
	Pidfile Pidfile
}

// NewIdentity is stage 3.5 userns-remap: LoadIdentity of --userns-remap.
func NewIdentity(p IdentityParams) (Identity, error) {
	return LoadIdentity(p.Config.UsernsRemap, p.Paths, p.Logger.With(zap.String("module", "host")))
}

// LoadIdentity resolves a --userns-remap value as dockerd does and loads
// its ranges from paths.Subuid and paths.Subgid.
//
// spec is "default", a user name or uid, or user:group / uid:gid (names
// and numbers may mix). A lone uid implies the group with the same gid, a
// lone name the group with the same name; the group must exist in
// paths.Group. Ranges are the lines name:start:count of the subordinate ID
// files whose name is the user's name or uid (for both files: /etc/subgid
// is keyed by user, as in shadow and dockerd); several lines concatenate
// into container IDs 0..N in file order.
//
// "default" uses the user dockremap, creating it with paths.UserAdd (a
// system user with no home and no login, and its group) when it is
// missing, and appending a 65536-ID range after the highest existing one
// to each subordinate ID file that has none for it. A spec naming root
// logs dockerd's warning and turns remapping off.
//
// Errors name the file and the user: a malformed spec (errdefs
// InvalidArgument), an unknown user, uid, group or gid, a missing
// subordinate ID file, a malformed line for the user, or no ranges for
// the user.
func LoadIdentity(spec string, paths Paths, log *zap.Logger) (Identity, error) {
	if spec == "" {
		return Identity{off: "userns-remap not configured"}, nil
	}
	u, group, err := resolveRemap(spec, paths, log)
	if err != nil {
		return Identity{}, err
	}
	if u.Name == "root" {
		log.Warn("User namespaces: root cannot be remapped with itself; user namespaces are OFF")
		return Identity{off: "root cannot be remapped with itself"}, nil
	}
	if spec == RemapDefault {
		for _, f := range []struct{ path, kind string }{{paths.Subuid, "subuid"}, {paths.Subgid, "subgid"}} {
			if err := ensureSubIDRange(f.path, f.kind, u, log); err != nil {
				return Identity{}, err
			}
		}
	}
	uids, err := loadSubIDs(paths.Subuid, "subuid", u)
	if err != nil {
		return Identity{}, err
	}
	gids, err := loadSubIDs(paths.Subgid, "subgid", u)
	if err != nil {
		return Identity{}, err
	}
	log.Info("user namespaces: ID ranges will be mapped to subuid/subgid ranges",
		zap.String("user", u.Name), zap.String("group", group))
	return Identity{User: u.Name, Group: group, UIDMaps: uids, GIDMaps: gids}, nil
}

// resolveRemap returns the user and the group name of a spec.
func resolveRemap(spec string, paths Paths, log *zap.Logger) (user.User, string, error) {
	parts := strings.Split(spec, ":")
	if len(parts) > 2 || slices.Contains(parts, "") {
		return user.User{}, "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"invalid --userns-remap %q: want default, user, uid, user:group or uid:gid", spec))
	}
	var u user.User
	var err error
	uid, numeric := parseID(parts[0])
	switch {
	case numeric:
		if u, err = lookupUser(paths.Passwd, func(x user.User) bool { return x.Uid == uid }); err != nil {
			return user.User{}, "", fmt.Errorf("uid %d has no entry in %s: %w", uid, paths.Passwd, err)
		}
	case parts[0] == RemapDefault:
		if u, err = defaultRemapUser(paths, log); err != nil {
			return user.User{}, "", err
		}
		if len(parts) == 1 {
			return u, lookupGroupName(paths.Group, u), nil
		}
	default:
		name := parts[0]
		if u, err = lookupUser(paths.Passwd, func(x user.User) bool { return x.Name == name }); err != nil {
			return user.User{}, "", fmt.Errorf("user %q has no entry in %s: %w", name, paths.Passwd, err)
		}
	}

	var g user.Group
	switch {
	case len(parts) == 2:
		if gid, ok := parseID(parts[1]); ok {
			if g, err = lookupGroup(paths.Group, func(x user.Group) bool { return x.Gid == gid }); err != nil {
				return user.User{}, "", fmt.Errorf("gid %d has no entry in %s: %w", gid, paths.Group, err)
			}
		} else if g, err = lookupGroup(paths.Group, func(x user.Group) bool { return x.Name == parts[1] }); err != nil {
			return user.User{}, "", fmt.Errorf("group %q has no entry in %s: %w", parts[1], paths.Group, err)
		}
	case numeric:
		if g, err = lookupGroup(paths.Group, func(x user.Group) bool { return x.Gid == uid }); err != nil {
			return user.User{}, "", fmt.Errorf("gid %d has no entry in %s: %w", uid, paths.Group, err)
		}
	default:
		if g, err = lookupGroup(paths.Group, func(x user.Group) bool { return x.Name == parts[0] }); err != nil {
			return user.User{}, "", fmt.Errorf("group %q has no entry in %s: %w", parts[0], paths.Group, err)
		}
	}
	return u, g.Name, nil
}

// parseID parses a numeric uid or gid.
func parseID(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int(n), true
}

// defaultRemapUser looks up dockremap, creating it when it is missing.
func defaultRemapUser(paths Paths, log *zap.Logger) (user.User, error) {
	byName := func(x user.User) bool { return x.Name == RemapDefaultUser }
	u, err := lookupUser(paths.Passwd, byName)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, user.ErrNoPasswdEntries) {
		return user.User{}, fmt.Errorf("look up user %q in %s: %w", RemapDefaultUser, paths.Passwd, err)
	}
	if err := addSystemUser(paths.UserAdd, RemapDefaultUser); err != nil {
		return user.User{}, err
	}
	if u, err = lookupUser(paths.Passwd, byName); err != nil {
		return user.User{}, fmt.Errorf("user %q has no entry in %s after creating it: %w", RemapDefaultUser, paths.Passwd, err)
	}
	log.Info("created the userns-remap user", zap.String("user", u.Name), zap.Int("uid", u.Uid))
	return u, nil
}

// addSystemUser creates a system user with no home and no login, and its
// group, with adduser's or useradd's arguments (as dockerd).
func addSystemUser(cmd, name string) error {
	bin := cmd
	if bin == "" {
		for _, c := range []string{"adduser", "useradd"} {
			if p, err := exec.LookPath(c); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		return fmt.Errorf("create user %q: neither adduser nor useradd in PATH", name)
	}
	args := []string{"-r", "-s", "/bin/false", "-M", "-U", name}
	if filepath.Base(bin) == "adduser" {
		args = []string{"--system", "--shell", "/bin/false", "--no-create-home", "--disabled-login", "--disabled-password", "--group", name}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create user %q with %s: %w: %s", name, bin, err, bytes.TrimSpace(out))
	}
	return nil
}

func lookupUser(path string, match func(user.User) bool) (user.User, error) {
	users, err := user.ParsePasswdFileFilter(path, match)
	if err != nil {
		return user.User{}, err
	}
	if len(users) == 0 {
		return user.User{}, user.ErrNoPasswdEntries
	}
	return users[0], nil
}

func lookupGroup(path string, match func(user.Group) bool) (user.Group, error) {
	groups, err := user.ParseGroupFileFilter(path, match)
	if err != nil {
		return user.Group{}, err
	}
	if len(groups) == 0 {
		return user.Group{}, user.ErrNoGroupEntries
	}
	return groups[0], nil
}

// lookupGroupName returns the name of u's primary group, or its gid when
// the group file does not have it.
func lookupGroupName(path string, u user.User) string {
	g, err := lookupGroup(path, func(x user.Group) bool { return x.Gid == u.Gid })
	if err != nil {
		return strconv.Itoa(u.Gid)
	}
	return g.Name
}

// subIDLine is one line of a subordinate ID file.
type subIDLine struct {
	name         string
	start, count int64
	err          error // malformed
	lineNo       int
}

// readSubIDs parses a subordinate ID file: lines name:start:count, blank
// lines and # comments ignored. Malformed lines are returned with err set.
func readSubIDs(path string) ([]subIDLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []subIDLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		l := subIDLine{lineNo: n}
		f := strings.Split(text, ":")
		l.name = f[0]
		if len(f) != 3 {
			l.err = fmt.Errorf("%s line %d: %q is not name:start:count", path, n, text)
			lines = append(lines, l)
			continue
		}
		start, err1 := strconv.ParseInt(f[1], 10, 64)
		count, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || start < 0 || count < 1 || start > math.MaxUint32-count {
			l.err = fmt.Errorf("%s line %d: %q is not name:start:count", path, n, text)
		}
		l.start, l.count = start, count
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// loadSubIDs returns u's ranges in path as an ID map from container ID 0.
// kind is "subuid" or "subgid".
func loadSubIDs(path, kind string, u user.User) ([]IDMap, error) {
	lines, err := readSubIDs(path)
	if err != nil {
		return nil, fmt.Errorf("%s ranges for user %q: %w", kind, u.Name, err)
	}
	uid := strconv.Itoa(u.Uid)
	var maps []IDMap
	var next int64
	for _, l := range lines {
		if l.name != u.Name && l.name != uid {
			continue
		}
		if l.err != nil {
			return nil, fmt.Errorf("%s ranges for user %q: %w", kind, u.Name, l.err)
		}
		maps = append(maps, IDMap{ContainerID: next, HostID: l.start, Size: l.count})
		next += l.count
	}
	if len(maps) == 0 {
		return nil, fmt.Errorf("no %s ranges found for user %q in %s", kind, u.Name, path)
	}
	return maps, nil
}

// ensureSubIDRange appends a range for u to path when it has none: 65536
// IDs from the end of the highest existing range (100000 at the lowest).
// A missing file is created 0644.
func ensureSubIDRange(path, kind string, u user.User, log *zap.Logger) error {
	lines, err := readSubIDs(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s ranges for user %q: %w", kind, u.Name, err)
	}
	start := int64(subIDRangeStart)
	uid := strconv.Itoa(u.Uid)
	for _, l := range lines {
		if l.name == u.Name || l.name == uid {
			return nil
		}
		if l.err == nil && l.start+l.count > start {
			start = l.start + l.count
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("add %s range for user %q: %w", kind, u.Name, err)
	}
	entry := fmt.Sprintf("%s:%d:%d\n", u.Name, start, subIDRangeSize)
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			entry = "\n" + entry
		}
	}
	_, werr := f.WriteString(entry)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("add %s range for user %q to %s: %w", kind, u.Name, path, err)
	}
	log.Info("added subordinate ID range", zap.String("file", path), zap.String("user", u.Name),
		zap.Int64("start", start), zap.Int64("count", subIDRangeSize))
	return nil
}

// RootIdentity is the value of stage 3.6 root-identity: the host uid and
// gid that the containers' root maps to, the first subuid and subgid when
// remapped, 0 and 0 otherwise. The remapped data root is named after it.
type RootIdentity struct {
	UID int
	GID int
}

// NewRootIdentity is stage 3.6 root-identity.
func NewRootIdentity(id Identity) RootIdentity {
	uid, gid := id.RootPair()
	return RootIdentity{UID: uid, GID: gid}
}
