package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// DataRoot is the effective data root, where every persistent file of the
// daemon lives: the configured --data-root, or <data-root>/<uid>.<gid>
// with --userns-remap (uid and gid the remapped root's).
type DataRoot struct {
	// Path is the directory's absolute path.
	Path string
}

// ExecRoot is the directory of the daemon's runtime state (--exec-root),
// created 0700.
type ExecRoot struct {
	// Path is the directory's absolute path.
	Path string
}

// DataRootParams are the inputs of stage 3.7 data-root.
type DataRootParams struct {
	fx.In

	Config   *config.Config
	Identity Identity
	Root     RootIdentity
	Logger   *zap.Logger
	// Pidfile orders the stage after the pidfile, which is written
	// before any other file.
	Pidfile Pidfile
}

// DataRootResult are the values of stage 3.7 data-root.
type DataRootResult struct {
	fx.Out

	DataRoot DataRoot
	ExecRoot ExecRoot
}

// NewDataRoot is stage 3.7 data-root: MakeDataRoot and MakeExecRoot.
func NewDataRoot(p DataRootParams) (DataRootResult, error) {
	root, err := MakeDataRoot(p.Config.DataRoot, p.Identity, p.Root)
	if err != nil {
		return DataRootResult{}, err
	}
	exec, err := MakeExecRoot(p.Config.ExecRoot)
	if err != nil {
		return DataRootResult{}, err
	}
	p.Logger.Debug("data root ready", zap.String("module", "host"),
		zap.String("data_root", root.Path), zap.String("exec_root", exec.Path))
	return DataRootResult{DataRoot: root, ExecRoot: exec}, nil
}

// MakeDataRoot creates the data root and returns the effective one, as
// dockerd does: dataRoot is created 0711 owned by root (an existing one is
// set 0711), so that remapped roots can traverse it. Without remapping it
// is the effective root and is set 0710. With remapping the effective root
// is dataRoot/<uid>.<gid>, 0710, owned by root and the remapped root's
// group, so that the remapped root can enter it but not list it; every
// directory above it must let the remapped root through (o+x, or g+x or
// u+x when it owns it), else the error names the directory.
func MakeDataRoot(dataRoot string, id Identity, root RootIdentity) (DataRoot, error) {
	if dataRoot == "" {
		return DataRoot{}, fmt.Errorf("data root: no --data-root configured")
	}
	base, err := filepath.Abs(dataRoot)
	if err != nil {
		return DataRoot{}, fmt.Errorf("data root %q: %w", dataRoot, err)
	}
	if err := mkdirMode(base, 0o711, 0, 0); err != nil {
		return DataRoot{}, fmt.Errorf("data root: %w", err)
	}
	if !id.Enabled() {
		if err := os.Chmod(base, 0o710); err != nil {
			return DataRoot{}, fmt.Errorf("data root: %w", err)
		}
		return DataRoot{Path: base}, nil
	}
	eff := filepath.Join(base, fmt.Sprintf("%d.%d", root.UID, root.GID))
	for dir := base; ; dir = filepath.Dir(dir) {
		if !canTraverse(dir, root.UID, root.GID) {
			return DataRoot{}, fmt.Errorf("remapped data root %s: %s does not let the remapped root (%d:%d) through; allow o+x on it",
				eff, dir, root.UID, root.GID)
		}
		if dir == "/" {
			break
		}
	}
	if err := mkdirMode(eff, 0o710, 0, root.GID); err != nil {
		return DataRoot{}, fmt.Errorf("remapped data root: %w", err)
	}
	return DataRoot{Path: eff}, nil
}

// MakeExecRoot creates the exec root 0700 (an existing one keeps its mode).
func MakeExecRoot(execRoot string) (ExecRoot, error) {
	if execRoot == "" {
		return ExecRoot{}, fmt.Errorf("exec root: no --exec-root configured")
	}
	p, err := filepath.Abs(execRoot)
	if err != nil {
		return ExecRoot{}, fmt.Errorf("exec root %q: %w", execRoot, err)
	}
	if err := os.MkdirAll(p, 0o700); err != nil {
		return ExecRoot{}, fmt.Errorf("exec root: %w", err)
	}
	return ExecRoot{Path: p}, nil
}

// mkdirMode creates dir (and missing parents, 0755 like MkdirAll would
// leave them under a 022 umask) and sets its mode and owner, whether it
// was created or already there.
func mkdirMode(dir string, mode fs.FileMode, uid, gid int) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st.Mode().Perm() != mode {
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != uid || int(sys.Gid) != gid {
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// canTraverse reports whether uid:gid may search dir (its x bit for the
// owner, the group or others, whichever applies). It ignores ACLs and
// supplementary groups, as dockerd's check does.
func canTraverse(dir string, uid, gid int) bool {
	st, err := os.Stat(dir)
	if err != nil {
		return false
	}
	perm := st.Mode().Perm()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return perm&0o001 != 0
	}
	switch {
	case int(sys.Uid) == uid:
		return perm&0o100 != 0
	case int(sys.Gid) == gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
