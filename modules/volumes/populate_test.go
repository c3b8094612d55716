package volumes

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func TestMountForEventAttributes(t *testing.T) {
	s, ev, _ := newTestService(t)
	create(t, s, CreateOptions{Name: "data"})
	ev.take()
	attrs := map[string]string{"destination": "/data", "read/write": "false", "propagation": "", "container": "spoof", "driver": "spoof"}
	if _, err := s.MountFor("data", "c1", attrs); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount("data", "c1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"volume mount data container=c1 destination=/data driver=local propagation= read/write=false",
		"volume unmount data container=c1 driver=local",
	}
	if got := ev.take(); !slices.Equal(got, want) {
		t.Errorf("events =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRootPair(t *testing.T) {
	s, err := New(Options{Root: filepath.Join(t.TempDir(), "volumes"), UID: 100000, GID: 100001})
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := s.RootPair(); uid != 100000 || gid != 100001 {
		t.Errorf("RootPair = %d, %d", uid, gid)
	}
}

// imageDir makes a directory as an image would hold one: a file, a
// nested directory, a symbolic link pointing out of it, a hard link, a
// FIFO and an executable, with odd modes and times.
func imageDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "srv")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(src, "conf"), []byte("image content"), 0o640))
	must(os.WriteFile(filepath.Join(src, "sub", "deep", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "escape")))
	must(os.Link(filepath.Join(src, "conf"), filepath.Join(src, "conf.link")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(os.Chmod(src, 0o750))
	must(os.Chmod(filepath.Join(src, "sub"), os.ModeSticky|0o777))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "conf"), old, old))
	must(os.Chtimes(filepath.Join(src, "sub"), old, old))
	return src
}

func TestPopulate(t *testing.T) {
	s, ev, _ := newTestService(t)
	ctx := context.Background()
	v := create(t, s, CreateOptions{Name: "data"})
	ev.take()
	src := imageDir(t)
	if os.Geteuid() == 0 {
		if err := os.Chown(src, 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(src, "conf"), 42, 43); err != nil {
			t.Fatal(err)
		}
	}
	copied, err := s.Populate(ctx, "data", "c1", src)
	if err != nil || !copied {
		t.Fatalf("Populate = %v, %v", copied, err)
	}
	dst := v.Mountpoint
	if b, err := os.ReadFile(filepath.Join(dst, "conf")); string(b) != "image content" {
		t.Errorf("conf = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "deep", "run.sh")); string(b) != "#!/bin/sh\n" {
		t.Errorf("nested file = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "escape")); l != "/etc/passwd" {
		t.Errorf("symlink = %q, %v (want it copied, not followed)", l, err)
	}
	stat := func(p string) *syscall.Stat_t {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t)
	}
	if a, b := stat("conf"), stat("conf.link"); a.Ino != b.Ino {
		t.Error("hard link copied as two files")
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "fifo")); fi == nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Error("FIFO not copied as a FIFO")
	}
	modes := []struct {
		give string
		want os.FileMode
	}{{".", os.ModeDir | 0o750}, {"conf", 0o640}, {"sub", os.ModeDir | os.ModeSticky | 0o777}, {"sub/deep/run.sh", 0o755}}
	for _, m := range modes {
		if fi, err := os.Lstat(filepath.Join(dst, m.give)); err != nil || fi.Mode() != m.want {
			t.Errorf("mode of %s = %v, want %v (%v)", m.give, fi.Mode(), m.want, err)
		}
	}
	for _, p := range []string{"conf", "sub"} {
		if got := time.Unix(stat(p).Mtim.Unix()).UTC(); got.Year() != 2020 {
			t.Errorf("mtime of %s = %v, want the image's", p, got)
		}
	}
	if os.Geteuid() == 0 {
		if st := stat("."); st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("data dir owner %d:%d, want the image directory's 1234:5678", st.Uid, st.Gid)
		}
		if st := stat("conf"); st.Uid != 42 || st.Gid != 43 {
			t.Errorf("conf owner %d:%d, want 42:43", st.Uid, st.Gid)
		}
	}
	// The copy took no mount and logged no event; c1 holds the volume.
	if got := ev.take(); len(got) != 0 {
		t.Errorf("events: %q", got)
	}
	s.mu.Lock()
	active := s.vols["data"].active
	s.mu.Unlock()
	if active != 0 {
		t.Errorf("%d active mounts after the copy", active)
	}
	if refs, _ := s.Refs("data"); !slices.Equal(refs, []string{"c1"}) {
		t.Errorf("refs = %q", refs)
	}

	// A volume with content is left alone.
	if err := os.WriteFile(filepath.Join(src, "later"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if copied, err := s.Populate(ctx, "data", "c2", src); err != nil || copied {
		t.Errorf("second Populate = %v, %v; want nothing copied", copied, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "later")); !os.IsNotExist(err) {
		t.Error("non-empty volume was written")
	}
}

func TestPopulateCases(t *testing.T) {
	s, _, fm := newTestService(t)
	ctx := context.Background()
	create(t, s, CreateOptions{Name: "data"})
	create(t, s, CreateOptions{Name: "tmp", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name       string
		giveVolume string
		giveRef    string
		giveSrc    string
		wantCopied bool
		wantErr    func(error) bool
	}{
		{name: "missing source", giveVolume: "data", giveRef: "c1", giveSrc: filepath.Join(empty, "nosuch")},
		{name: "source is a file", giveVolume: "data", giveRef: "c1", giveSrc: file},
		{name: "source below a file", giveVolume: "data", giveRef: "c1", giveSrc: filepath.Join(file, "sub")},
		// An empty directory still gives the volume its owner and mode.
		{name: "empty source", giveVolume: "data", giveRef: "c1", giveSrc: empty, wantCopied: true},
		{name: "device volume, empty source", giveVolume: "tmp", giveRef: "c1", giveSrc: empty, wantCopied: true},
		{name: "missing volume", giveVolume: "nosuch", giveRef: "c1", giveSrc: empty, wantErr: errdefs.IsNotFound},
		{name: "no reference", giveVolume: "data", giveSrc: empty, wantErr: errdefs.IsInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			copied, err := s.Populate(ctx, tt.giveVolume, tt.giveRef, tt.giveSrc)
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Errorf("Populate = %v, want a classified error", err)
				}
				return
			}
			if err != nil || copied != tt.wantCopied {
				t.Errorf("Populate = %v, %v; want %v", copied, err, tt.wantCopied)
			}
		})
	}
	// The device volume was mounted for the look and unmounted after.
	if want := []string{"mount tmp", "unmount tmp"}; !slices.Equal(fm.calls, want) {
		t.Errorf("mount calls = %q, want %q", fm.calls, want)
	}
}

func TestPopulateCanceled(t *testing.T) {
	s, _, _ := newTestService(t)
	v := create(t, s, CreateOptions{Name: "data"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Populate(ctx, "data", "c1", imageDir(t)); err != context.Canceled {
		t.Fatalf("Populate = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 0 {
		t.Errorf("canceled copy left %d entries", len(entries))
	}
}
