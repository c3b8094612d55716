package volumes

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/moby/moby/api/types/volume"
	"go.uber.org/zap"
)

// DiskUsage is the volumes' share of GET /system/df, as dockerd's: the
// local volumes without mount options (a volume that mounts a device
// holds no space of the data root), TotalCount of them, ActiveCount those
// with at least one reference, TotalSize the bytes of their files and
// Reclaimable those of the unreferenced ones. Items, filled only when
// verbose, are the volumes sorted by name with UsageData (Size in bytes,
// -1 when it cannot be read; RefCount the number of holders).
func (s *Service) DiskUsage(ctx context.Context, verbose bool) (*volume.DiskUsage, error) {
	type entry struct {
		v    volume.Volume
		path string
		refs int
	}
	var ents []entry
	s.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		v := s.vols[name]
		if v.meta.Driver == DriverName && len(v.meta.Options) == 0 {
			ents = append(ents, entry{v.api(), v.path(), len(v.refs)})
		}
	}
	s.mu.Unlock()

	du := &volume.DiskUsage{TotalCount: int64(len(ents))}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		size, err := dirSize(ctx, e.path)
		if err != nil {
			s.log.Warn("could not determine size of volume", zap.String("volume", e.v.Name), zap.Error(err))
			size = -1
		}
		if size >= 0 {
			du.TotalSize += size
			if e.refs == 0 {
				du.Reclaimable += size
			}
		}
		if e.refs > 0 {
			du.ActiveCount++
		}
		if verbose {
			e.v.UsageData = &volume.UsageData{Size: size, RefCount: int64(e.refs)}
			du.Items = append(du.Items, e.v)
		}
	}
	return du, nil
}

// dirSize returns the bytes of the files under dir, each inode counted
// once (hard links), directories not counted, as dockerd's
// directory.Size. Entries that vanish while walking are skipped.
func dirSize(ctx context.Context, dir string) (int64, error) {
	var size int64
	seen := map[uint64]struct{}{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if info.Size() == 0 {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if _, dup := seen[st.Ino]; dup {
				return nil
			}
			seen[st.Ino] = struct{}{}
		}
		size += info.Size()
		return nil
	})
	return size, err
}
