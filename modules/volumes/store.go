package volumes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// loadVolume reads the volume in dir. It returns nil, nil for a directory
// that is no volume (no metadata and no _data).
func loadVolume(dir, name string) (*vol, error) {
	v := &vol{dir: dir, refs: map[string]struct{}{}, mounts: map[string]int{}}
	b, err := os.ReadFile(filepath.Join(dir, metaFileName))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &v.meta); err != nil {
			return nil, fmt.Errorf("read %s: %w", metaFileName, err)
		}
		if v.meta.Name != name {
			return nil, fmt.Errorf("%s names volume %q", metaFileName, v.meta.Name)
		}
		if v.meta.Driver == "" {
			v.meta.Driver = DriverName
		}
		if v.meta.Scope == "" {
			v.meta.Scope = LocalScope
		}
		return v, nil
	case errors.Is(err, fs.ErrNotExist):
		// dockerd's layout: a _data directory, metadata elsewhere.
		st, serr := os.Stat(filepath.Join(dir, dataDirName))
		if serr != nil || !st.IsDir() {
			return nil, nil
		}
		created := st.ModTime()
		if dst, err := os.Stat(dir); err == nil {
			if sys, ok := dst.Sys().(*syscall.Stat_t); ok {
				created = time.Unix(sys.Ctim.Unix())
			}
		}
		v.meta = metadata{Name: name, Driver: DriverName, Scope: LocalScope, CreatedAt: created.UTC()}
		return v, nil
	default:
		return nil, err
	}
}

// writeMeta writes dir/volume.json atomically: a temporary file synced
// and renamed over it, then dir synced.
func writeMeta(dir string, meta metadata) error {
	b, err := json.MarshalIndent(meta, "", "\t")
	if err != nil {
		return fmt.Errorf("encode volume metadata: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+metaFileName+"-")
	if err != nil {
		return fmt.Errorf("write volume metadata: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(0o600)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write volume metadata: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFileName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write volume metadata: %w", err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, so that the renames in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
