package volumes

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mount"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// newRootService opens a service with real mounts; it skips without root.
// The cleanup unmounts whatever the test left mounted under the root.
func newRootService(t *testing.T) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a volume's options needs root")
	}
	root := filepath.Join(t.TempDir(), "volumes")
	s, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.RecursiveUnmount(root); err != nil {
			t.Errorf("cleanup unmount: %v", err)
		}
	})
	return s
}

func TestTmpfsVolume(t *testing.T) {
	s := newRootService(t)
	ctx := context.Background()
	v := create(t, s, CreateOptions{Name: "tmp", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0750"}})
	p, err := s.Mount("tmp", "c1")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("mounted fs type %#x, %d bytes; want a 1 MiB tmpfs", st.Type, st.Blocks*uint64(st.Bsize))
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, want 0750 from o=mode=0750", fi.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("tmp", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount("tmp", "c1"); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := mountinfo.Mounted(v.Mountpoint); !mounted {
		t.Fatal("unmounted while c2 still uses it")
	}
	if err := s.Unmount("tmp", "c2"); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := mountinfo.Mounted(v.Mountpoint); mounted {
		t.Fatal("still mounted after the last user")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); !os.IsNotExist(err) {
		t.Errorf("tmpfs content outlived the mount: %v", err)
	}

	// Close unmounts what is still mounted.
	if _, err := s.Mount("tmp", "c3"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := mountinfo.Mounted(v.Mountpoint); mounted {
		t.Error("Close left the volume mounted")
	}
	s.Unmount("tmp", "c3")
	s.Release("tmp", "c3")
	s.Release("tmp", "c1")
	s.Release("tmp", "c2")
	if err := s.Remove(ctx, "tmp", false); err != nil {
		t.Fatal(err)
	}
}

func TestBindVolumeKeepsHostData(t *testing.T) {
	s := newRootService(t)
	ctx := context.Background()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := create(t, s, CreateOptions{Name: "hostdir", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}})
	p, err := s.Mount("hostdir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "precious")); string(b) != "keep" {
		t.Fatalf("bind volume shows %q, %v", b, err)
	}

	// A restart while mounted: the new service sees it mounted.
	s2, err := New(Options{Root: s.Root()})
	if err != nil {
		t.Fatal(err)
	}
	s2.mu.Lock()
	mounted := s2.vols["hostdir"].mounted
	s2.mu.Unlock()
	if !mounted {
		t.Error("reopened service does not know the volume is mounted")
	}
	// Removing it unmounts before deleting: the host data survives.
	if err := s2.Remove(ctx, "hostdir", false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "precious")); string(b) != "keep" {
		t.Fatalf("host data after removing the volume: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !os.IsNotExist(err) {
		t.Errorf("volume directory left: %v", err)
	}
}

func TestRemoveRefusesForeignMount(t *testing.T) {
	s := newRootService(t)
	ctx := context.Background()
	v := create(t, s, CreateOptions{Name: "plain"})
	// Something else mounted inside the volume (a leak): removal must not
	// reach into it.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "precious"), []byte("keep"), 0o644)
	if err := mount.Mount(host, v.Mountpoint, "none", "bind"); err != nil {
		t.Fatal(err)
	}
	err := s.Remove(ctx, "plain", true)
	if err == nil || err.Error() != "remove plain: volume has active mounts" {
		t.Errorf("remove = %v", err)
	}
	if rep, _ := s.Prune(ctx, Filters{"all": {"true"}}); len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune removed %q", rep.VolumesDeleted)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "precious")); string(b) != "keep" {
		t.Fatal("host data touched")
	}
	if err := mount.Unmount(v.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "plain", false); err != nil {
		t.Errorf("remove after unmount = %v", err)
	}
}
