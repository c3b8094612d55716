package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

// flags parses a command line whose daemon.json, data root, exec root and
// pidfile live in a temporary directory.
func flags(t *testing.T, file string, args ...string) *config.Flags {
	t.Helper()
	for _, k := range []string{"DOCKER_DRIVER", "DOCKER_TMPDIR", "DOCKER_MIN_API_VERSION"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.ParseFlags(append([]string{"--config-file", path, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid")}, args...))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestModule(t *testing.T) {
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	var (
		c    *config.Config
		v    config.Verified
		live *config.Live
	)
	app := fxtest.New(t,
		fx.NopLogger,
		fx.Supply(flags(t, `{"debug":true,"mtu":1400}`), zap.NewNop(), level),
		config.Module.Fx(nil),
		fx.Populate(&c, &v, &live),
	)
	app.RequireStart()
	defer app.RequireStop()
	if c.MTU != 1400 || live.Current() != c {
		t.Errorf("MTU = %d, live current is the boot config: %v", c.MTU, live.Current() == c)
	}
	if level.Level() != zapcore.DebugLevel {
		t.Errorf("level = %v, want debug", level.Level())
	}
}

func TestModuleFails(t *testing.T) {
	tests := []struct {
		name     string
		giveFile string
		wantErr  string
	}{
		{name: "config", giveFile: `{"mtu":-1}`, wantErr: "invalid default MTU: -1"},
		{name: "verify-settings", giveFile: `{"bridge":"br-test","bip":"192.0.2.1/24"}`, wantErr: "You specified -b & --bip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v config.Verified
			app := fx.New(fx.NopLogger, fx.Supply(flags(t, tt.giveFile), zap.NewNop()), config.Module.Fx(nil), fx.Populate(&v))
			if err := app.Err(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("app error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestGraph(t *testing.T) {
	g, err := pipeline.NewGraph([]pipeline.Mod{config.Module}, &config.Flags{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"2.1 config → 3.2 verify-settings [*config.Config]": false,
		"2.1 config → reload [*config.Config]":              false,
	}
	for _, e := range g.Edges {
		k := e.From + " → " + e.To + " [" + e.Label + "]"
		if _, ok := want[k]; ok {
			want[k] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("edge %s missing from %+v", k, g.Edges)
		}
	}
}
