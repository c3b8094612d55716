package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Populate copies the directory src (the content of a container's root
// filesystem at a volume's destination) into the volume name when the
// volume's data directory is empty, as dockerd's copy-up of image content
// into a volume at container create. Files, directories, symbolic links
// (never followed), hard links, devices and FIFOs are copied with their
// owners, modes, times and extended attributes, and the data directory
// takes src's owner and mode, so that a volume over an image directory
// owned by a service user is that user's. A missing src (or one below a
// file), one that is no directory, or a volume that is not empty copies nothing: copied is
// false. An empty src still gives the data directory its owner and mode
// (copied is true), as dockerd. A volume whose options mount a device has it mounted for the
// copy. ref (the container the copy is for) becomes a holder of the
// volume, as with Mount; no event is logged, as dockerd's copy-up logs
// none.
//
// Errors: a missing volume (*OpError "get <name>: no such volume",
// NotFound), an empty ref (InvalidArgument), a failing mount or copy
// (Internal). A copy that fails half-way is undone: the volume is left
// empty.
func (s *Service) Populate(ctx context.Context, name, ref, src string) (copied bool, err error) {
	if ref == "" {
		return false, invalidf("volume %s: empty reference", name)
	}
	st, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || err == nil && !st.IsDir() {
		return false, nil
	}
	if err != nil {
		return false, systemError{fmt.Errorf("copy image data to volume %s: %w", name, err)}
	}
	s.mu.Lock()
	v, ok := s.vols[name]
	if !ok {
		s.mu.Unlock()
		return false, noSuchVolume(name)
	}
	err = s.mountLocked(v, ref)
	dst := v.path()
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	defer func() {
		if uerr := s.unmount(name, ref, false); uerr != nil {
			s.log.Warn("volume not unmounted after copy", zap.String("volume", name), zap.Error(uerr))
		}
	}()
	entries, err := os.ReadDir(dst)
	if err != nil {
		return false, systemError{fmt.Errorf("copy image data to volume %s: %w", name, err)}
	}
	if len(entries) > 0 {
		return false, nil
	}
	if err := copyTree(ctx, src, dst); err != nil {
		if cerr := emptyDir(dst); cerr != nil {
			s.log.Warn("half-copied volume not emptied", zap.String("volume", name), zap.Error(cerr))
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, systemError{fmt.Errorf("copy image data to volume %s: %w", name, err)}
	}
	return true, nil
}

// emptyDir removes everything inside dir, not dir itself.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// copyTree copies the tree at src into the existing directory dst, as
// dockerd's copy-up (containerd's fs.CopyDir): entries with their owner,
// mode, times and extended attributes, hard links kept as links,
// symbolic links copied as links, sockets skipped. dst takes src's
// owner, mode and times. Directories' times are set last, after their
// content.
func copyTree(ctx context.Context, src, dst string) error {
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	var dirs []struct {
		path string
		st   *syscall.Stat_t
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, struct {
				path string
				st   *syscall.Stat_t
			}{target, st})
			// Owner, mode and xattrs now; times once the content is in.
			return copyMeta(p, target, st, mode, false)
		case mode.IsRegular():
			key := inode{uint64(st.Dev), st.Ino}
			if st.Nlink > 1 {
				if first, ok := links[key]; ok {
					return os.Link(first, target)
				}
				links[key] = target
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			// Sockets belong to the process that bound them.
			return nil
		}
		return copyMeta(p, target, st, mode, true)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTimes(dirs[i].path, dirs[i].st); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a regular file's content into a new file (the kernel
// copies in place where it can: io.Copy between files uses
// copy_file_range).
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// copyMeta gives dst src's owner, then mode (chown clears set-id bits),
// extended attributes and, when times is set, times. Symbolic links get
// their owner and times only.
func copyMeta(src, dst string, st *syscall.Stat_t, mode fs.FileMode, times bool) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(dst, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	copyXattrs(src, dst)
	if times {
		return setTimes(dst, st)
	}
	return nil
}

// setTimes sets path's access and modification times from st, without
// following a symbolic link.
func setTimes(path string, st *syscall.Stat_t) error {
	ts := []unix.Timespec{unix.NsecToTimespec(syscall.TimespecToNsec(st.Atim)), unix.NsecToTimespec(syscall.TimespecToNsec(st.Mtim))}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyXattrs copies src's extended attributes to dst, best effort: a
// filesystem without them (or an attribute the target refuses, such as
// an SELinux label the policy does not allow) is no reason to fail a
// copy-up, as the content is what the container needs.
func copyXattrs(src, dst string) {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range splitNul(buf[:size]) {
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil || n < 0 {
			continue
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, name, val[:n], 0)
	}
}

// splitNul splits a NUL-separated list of names.
func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
