package volumes

import (
	"context"
	"fmt"
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
