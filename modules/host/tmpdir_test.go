package host

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

func TestNewTmpDir(t *testing.T) {
	tests := []struct {
		name         string
		giveOld      bool // a tmp with a file in it, and a leftover tmp-old
		giveDockerTD bool
	}{
		{name: "fresh"},
		{name: "old tmp moved aside and removed", giveOld: true},
		{name: "DOCKER_TMPDIR", giveDockerTD: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := os.TempDir()
			t.Setenv("TMPDIR", before)
			root := t.TempDir()
			cfg := &config.Config{}
			want := filepath.Join(root, "tmp")
			if tt.giveDockerTD {
				want = filepath.Join(t.TempDir(), "docker-tmp")
				cfg.DockerTmpdir = want
			}
			if tt.giveOld {
				for _, d := range []string{"tmp/sub", "tmp-old/x"} {
					if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				os.WriteFile(filepath.Join(root, "tmp", "sub", "file"), []byte("x"), 0o644)
			}
			lc := fxtest.NewLifecycle(t)
			got, err := NewTmpDir(TmpDirParams{Lifecycle: lc, Config: cfg, Root: DataRoot{Path: root}, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			if got.Path != want {
				t.Fatalf("tmp dir %s, want %s", got.Path, want)
			}
			entries, err := os.ReadDir(got.Path)
			if err != nil || len(entries) != 0 {
				t.Errorf("tmp dir not empty: %v, %v", entries, err)
			}
			if mode, _, _ := owner(t, got.Path); mode != 0o700 {
				t.Errorf("tmp dir mode %v, want 0700", mode)
			}
			if os.Getenv("TMPDIR") != want {
				t.Errorf("TMPDIR = %q, want %q", os.Getenv("TMPDIR"), want)
			}
			lc.RequireStart()
			lc.RequireStop() // waits for the background removal
			if old, _ := filepath.Glob(filepath.Join(root, "tmp-old*")); len(old) != 0 {
				t.Errorf("old tmp directories left: %v", old)
			}
			if os.Getenv("TMPDIR") != before {
				t.Errorf("TMPDIR not restored: %q", os.Getenv("TMPDIR"))
			}
		})
	}
}
