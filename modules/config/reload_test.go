package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// reloadFixture is a Live over a daemon.json in a temporary directory.
type reloadFixture struct {
	path  string
	live  *Live
	level zap.AtomicLevel
	logs  *observer.ObservedLogs
	lc    *fxtest.Lifecycle
	calls [][]string // changed keys of each notification
}

func newReloadFixture(t *testing.T, file string, args ...string) *reloadFixture {
	t.Helper()
	clearEnv(t)
	dir := t.TempDir()
	fx := &reloadFixture{path: filepath.Join(dir, "daemon.json")}
	fx.write(t, file)
	all := append([]string{"--config-file", fx.path, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "wharfd.pid")}, args...)
	f, err := ParseFlags(all)
	if err != nil {
		t.Fatal(err)
	}
	fx.level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	c, err := New(NewParams{Flags: f, Level: fx.level})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	fx.logs = logs
	fx.lc = fxtest.NewLifecycle(t)
	fx.live = NewLive(LiveParams{Flags: f, Config: c, Logger: zap.New(core), Lifecycle: fx.lc, Level: fx.level})
	fx.live.Subscribe(func(old, new *Config, changed []string) {
		fx.calls = append(fx.calls, slices.Clone(changed))
	})
	return fx
}

func (fx *reloadFixture) write(t *testing.T, file string) {
	t.Helper()
	if err := os.WriteFile(fx.path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	const boot = `{"debug":false,"labels":["a=1"],"mtu":1400,"max-concurrent-downloads":3}`
	tests := []struct {
		name        string
		giveArgs    []string
		giveBoot    string // daemon.json at boot, when not boot
		giveFile    string // daemon.json at reload
		wantErr     string
		wantChanged []string // nil: no notification
		wantIgnored []string
		wantCheck   func(t *testing.T, old, cur *Config)
	}{
		{
			name:        "reloadable keys applied",
			giveFile:    `{"debug":true,"labels":["a=2"],"mtu":1400,"max-concurrent-downloads":7,"max-concurrent-uploads":1,"max-download-attempts":2,"shutdown-timeout":3,"insecure-registries":["r.example.com:5000"],"registry-mirrors":["https://m.example.com"],"live-restore":true}`,
			wantChanged: []string{"debug", "labels", "live-restore", "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "shutdown-timeout", "insecure-registries", "registry-mirrors"},
			wantCheck: func(t *testing.T, old, cur *Config) {
				if !cur.Debug || cur.Labels[0] != "a=2" || cur.MaxConcurrentDownloads != 7 || cur.ShutdownTimeout != 3*time.Second || !cur.LiveRestore {
					t.Errorf("current = %+v", cur)
				}
				if old.Debug || old.Labels[0] != "a=1" || old.MaxConcurrentDownloads != 3 {
					t.Errorf("the previous configuration changed: %+v", old)
				}
			},
		},
		{
			name:        "non-reloadable keys ignored",
			giveFile:    `{"debug":false,"labels":["a=1"],"mtu":9000,"max-concurrent-downloads":4,"storage-driver":"vfs"}`,
			wantChanged: []string{"max-concurrent-downloads"},
			wantIgnored: []string{"mtu", "storage-driver"},
			wantCheck: func(t *testing.T, old, cur *Config) {
				if cur.MTU != 1400 || cur.StorageDriver != "" || cur.MaxConcurrentDownloads != 4 {
					t.Errorf("MTU = %d, StorageDriver = %q, MaxConcurrentDownloads = %d", cur.MTU, cur.StorageDriver, cur.MaxConcurrentDownloads)
				}
			},
		},
		{
			name:     "nothing changed",
			giveFile: boot,
		},
		{
			name:     "bad file keeps the previous configuration",
			giveFile: `{"debug":true,"mtu":-1}`,
			wantErr:  "reload configuration: unable to configure the daemon with file FILE: invalid default MTU: -1",
		},
		{
			name:     "invalid JSON keeps the previous configuration",
			giveFile: `{"debug":true,`,
			wantErr:  "reload configuration: unable to configure the daemon with file FILE: invalid JSON",
		},
		{
			name:     "failed verification keeps the previous configuration",
			giveFile: `{"debug":true,"icc":false,"iptables":false}`,
			wantErr:  "reload configuration: You specified --iptables=false with --icc=false",
		},
		{
			name:     "flag conflicts still refused",
			giveArgs: []string{"--live-restore"},
			giveBoot: `{}`,
			giveFile: `{"live-restore":true}`,
			wantErr:  "reload configuration: unable to configure the daemon with file FILE: the following directives are specified both as a flag and in the configuration file: live-restore: (from flag: true, from file: true)",
		},
		{
			name:        "flags still win",
			giveArgs:    []string{"--max-concurrent-uploads=9"},
			giveBoot:    `{"labels":["a=1"],"mtu":1400,"max-concurrent-downloads":5}`,
			giveFile:    `{"labels":["b=1"]}`,
			wantChanged: []string{"labels", "max-concurrent-downloads"},
			wantIgnored: []string{"mtu"},
			wantCheck: func(t *testing.T, old, cur *Config) {
				if cur.MaxConcurrentUploads != 9 || cur.MaxConcurrentDownloads != DefaultMaxConcurrentDownloads {
					t.Errorf("MaxConcurrentUploads = %d, MaxConcurrentDownloads = %d", cur.MaxConcurrentUploads, cur.MaxConcurrentDownloads)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bootFile := boot
			if tt.giveBoot != "" {
				bootFile = tt.giveBoot
			}
			fx := newReloadFixture(t, bootFile, tt.giveArgs...)
			old := fx.live.Current()
			fx.write(t, tt.giveFile)

			err := fx.live.Reload()
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "FILE", fx.path)
				if err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("Reload error = %v, want %q", err, want)
				}
				if fx.live.Current() != old || len(fx.calls) != 0 {
					t.Errorf("a failed reload changed the configuration or notified")
				}
				if fx.level.Level() != zapcore.InfoLevel {
					t.Errorf("a failed reload changed the log level")
				}
				return
			}
			if err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if fx.logs.FilterMessage("reloaded configuration").FilterField(zap.String("module", "config")).Len() != 1 {
				t.Errorf("no %q log line with the module field: %v", "reloaded configuration", fx.logs.All())
			}
			if tt.wantChanged == nil {
				// dockerd reports every successful reload, changed or not.
				if len(fx.calls) != 1 || len(fx.calls[0]) != 0 || fx.live.Current() != old {
					t.Errorf("notifications %v for an unchanged file, want one with no key", fx.calls)
				}
				return
			}
			if len(fx.calls) != 1 || !slices.Equal(fx.calls[0], tt.wantChanged) {
				t.Errorf("notifications = %v, want one with %v", fx.calls, tt.wantChanged)
			}
			var ignored []any
			for _, e := range fx.logs.FilterMessage("configuration changes need a restart").All() {
				ignored, _ = e.ContextMap()["keys"].([]any)
			}
			if fmt.Sprint(ignored) != fmt.Sprint(tt.wantIgnored) {
				t.Errorf("keys needing a restart = %v, want %v", ignored, tt.wantIgnored)
			}
			wantLevel := zapcore.InfoLevel
			if fx.live.Current().Debug {
				wantLevel = zapcore.DebugLevel
			}
			if fx.level.Level() != wantLevel {
				t.Errorf("log level = %v, want %v", fx.level.Level(), wantLevel)
			}
			if tt.wantCheck != nil {
				tt.wantCheck(t, old, fx.live.Current())
			}
		})
	}
}

func TestReloadUnsubscribe(t *testing.T) {
	fx := newReloadFixture(t, `{}`)
	var n int
	stop := fx.live.Subscribe(func(*Config, *Config, []string) { n++ })
	fx.write(t, `{"debug":true}`)
	if err := fx.live.Reload(); err != nil {
		t.Fatal(err)
	}
	stop()
	fx.write(t, `{"debug":false}`)
	if err := fx.live.Reload(); err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(fx.calls) != 2 {
		t.Errorf("unsubscribed subscriber called %d times (want 1), other %d (want 2)", n, len(fx.calls))
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	fx := newReloadFixture(t, `{"labels":["a=1"]}`)
	got := make(chan []string, 1)
	fx.live.Subscribe(func(_, _ *Config, changed []string) { got <- changed })
	fx.lc.RequireStart()
	fx.write(t, `{"labels":["a=2"]}`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case changed := <-got:
		if !slices.Equal(changed, []string{"labels"}) {
			t.Errorf("changed = %v", changed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s of SIGHUP")
	}
	fx.lc.RequireStop()
	if l := fx.live.Current().Labels; !slices.Equal(l, []string{"a=2"}) {
		t.Errorf("Labels = %v", l)
	}
}

func TestNewSetsLevel(t *testing.T) {
	clearEnv(t)
	f, err := ParseFlags([]string{"-l", "warn"})
	if err != nil {
		t.Fatal(err)
	}
	f.Options.ConfigFile = filepath.Join(t.TempDir(), "daemon.json") // absent, as at the default path
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	if _, err := New(NewParams{Flags: f, Level: level}); err != nil {
		t.Fatal(err)
	}
	if level.Level() != zapcore.WarnLevel {
		t.Errorf("level = %v, want warn", level.Level())
	}
	if _, err := New(NewParams{Flags: f}); err != nil {
		t.Errorf("New without a level: %v", err)
	}
}

// TestOnReloadBrackets: every reload, applied or refused, is bracketed by
// the before and after callbacks, the after one told the outcome.
func TestOnReloadBrackets(t *testing.T) {
	fx := newReloadFixture(t, `{}`)
	var got []string
	unsubscribe := fx.live.OnReload(
		func() { got = append(got, "before") },
		func(err error) { got = append(got, fmt.Sprintf("after:%v", err != nil)) },
	)
	fx.write(t, `{"debug":true}`)
	if err := fx.live.Reload(); err != nil {
		t.Fatal(err)
	}
	fx.write(t, `{"mtu":-1}`)
	if err := fx.live.Reload(); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	unsubscribe()
	if err := fx.live.Reload(); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	if want := "before after:false before after:true"; strings.Join(got, " ") != want {
		t.Errorf("callbacks = %v, want %s", got, want)
	}
}
