package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

func TestModule(t *testing.T) {
	cfg := &config.Config{ExecRoot: t.TempDir()}
	var r *Runtime
	app := fxtest.New(t,
		fx.Supply(cfg, config.Verified{}, host.ExecRoot{Path: cfg.ExecRoot}, zap.NewNop()),
		Module.Fx(nil),
		fx.Populate(&r),
	)
	app.RequireStart()
	if want := filepath.Join(cfg.ExecRoot, StateDirName); r.Root() != want {
		t.Fatalf("root: got %s, want %s", r.Root(), want)
	}
	if _, err := os.Stat(r.Root()); err != nil {
		t.Fatal(err)
	}
	app.RequireStop()
	if _, err := os.Stat(r.Root()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root left after stop: %v", err)
	}
	if _, err := r.Create(context.Background(), "late", nil); err == nil {
		t.Fatal("create after stop succeeded")
	}
}

func TestNewRuntimeErrors(t *testing.T) {
	tests := []struct {
		name string
		give Options
	}{
		{name: "relative root", give: Options{Root: "runtime"}},
		{name: "unknown driver", give: Options{Root: "/tmp/x", CgroupDriver: "lxc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRuntime(tt.give); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
