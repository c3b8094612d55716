package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCreateRemove measures one named volume created (staging
// directory, metadata fsynced, renamed into place) and removed.
func BenchmarkCreateRemove(b *testing.B) {
	s, err := New(Options{Root: filepath.Join(b.TempDir(), "volumes")})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("bench%d", i)
		if _, _, err := s.Create(ctx, CreateOptions{Name: name}); err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(ctx, name, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList measures GET /volumes's service call over 1000 volumes,
// with a label filter.
func BenchmarkList(b *testing.B) {
	s, err := New(Options{Root: filepath.Join(b.TempDir(), "volumes")})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 1000 {
		labels := map[string]string{"n": fmt.Sprint(i % 10)}
		if _, _, err := s.Create(ctx, CreateOptions{Name: fmt.Sprintf("v%04d", i), Labels: labels}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		vols, _, err := s.List(ctx, Filters{"label": {"n=3"}})
		if err != nil || len(vols) != 100 {
			b.Fatal(len(vols), err)
		}
	}
}

// BenchmarkOpen measures loading a volumes directory of 1000 volumes, the
// stage's share of a daemon start.
func BenchmarkOpen(b *testing.B) {
	root := filepath.Join(b.TempDir(), "volumes")
	s, err := New(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, _, err := s.Create(context.Background(), CreateOptions{Name: fmt.Sprintf("v%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := New(Options{Root: root}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBind measures parsing one -v spec.
func BenchmarkParseBind(b *testing.B) {
	for b.Loop() {
		if _, err := ParseBind("cache:/var/cache:ro,nocopy", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPopulate measures the copy-up of an image directory into a new
// volume: 1000 files of 4 KiB in 10 directories (about 4 MB), with their
// metadata. The volume is emptied between rounds, outside the timing.
func BenchmarkPopulate(b *testing.B) {
	s, err := New(Options{Root: filepath.Join(b.TempDir(), "volumes"), UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(b.TempDir(), "src")
	body := make([]byte, 4096)
	for d := range 10 {
		dir := filepath.Join(src, fmt.Sprintf("dir%d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), body, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	v, _, err := s.Create(ctx, CreateOptions{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1000 * 4096)
	for b.Loop() {
		copied, err := s.Populate(ctx, "bench", "c1", src)
		if err != nil || !copied {
			b.Fatalf("Populate = %v, %v", copied, err)
		}
		b.StopTimer()
		if err := emptyDir(v.Mountpoint); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
