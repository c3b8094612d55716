package host

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// hostValues are the host stages' values as a dependent sees them.
type hostValues struct {
	fx.In

	Privileged Privileged
	Pidfile    Pidfile
	Identity   Identity
	Root       RootIdentity
	DataRoot   DataRoot
	ExecRoot   ExecRoot
	TmpDir     TmpDir
	AppArmor   AppArmor
	SELinux    SELinux
	EngineID   EngineID
	Notifier   *Notifier
	Stacks     *StackDumper
}

// boot runs the host module once, as root, against cfg and paths, and
// returns its values after a clean start and stop.
func boot(t *testing.T, cfg *config.Config, paths Paths) hostValues {
	t.Helper()
	var v hostValues
	app := fxtest.New(t,
		fx.NopLogger,
		Module.Fx(nil),
		fx.Supply(cfg, zap.NewNop()),
		fx.Replace(paths),
		fx.Populate(&v),
	)
	app.RequireStart()
	if got, _ := os.ReadFile(cfg.Pidfile); string(got) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pidfile holds %q while running", got)
	}
	if os.Getenv("TMPDIR") != v.TmpDir.Path {
		t.Errorf("TMPDIR = %q while running, want %q", os.Getenv("TMPDIR"), v.TmpDir.Path)
	}
	app.RequireStop()
	if _, err := os.Stat(cfg.Pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left after a clean stop (err %v)", err)
	}
	return v
}

func TestModuleBootsTwice(t *testing.T) {
	needRoot(t)
	t.Setenv("TMPDIR", os.TempDir())
	dir := traversable(t)
	cfg := &config.Config{
		ConfigFile:  filepath.Join(dir, "etc", "daemon.json"),
		DataRoot:    filepath.Join(dir, "root"),
		ExecRoot:    filepath.Join(dir, "exec"),
		Pidfile:     filepath.Join(dir, "wharfd.pid"),
		UsernsRemap: "alice",
	}
	paths := fakeEtc(t, ptr("alice:100000:65536\n"), ptr("alice:100000:65536\n"))
	paths.AppArmorEnabled = filepath.Join(dir, "no-apparmor")

	first := boot(t, cfg, paths)
	if want := filepath.Join(cfg.DataRoot, "100000.100000"); first.DataRoot.Path != want {
		t.Errorf("data root %s, want %s", first.DataRoot.Path, want)
	}
	if want := filepath.Join(first.DataRoot.Path, "tmp"); first.TmpDir.Path != want {
		t.Errorf("tmp %s, want %s", first.TmpDir.Path, want)
	}
	if first.AppArmor.SkipReason() == "" || first.SELinux.SkipReason() == "" || first.Pidfile.SkipReason() != "" {
		t.Errorf("skip reasons: apparmor %q, selinux %q, pidfile %q",
			first.AppArmor.SkipReason(), first.SELinux.SkipReason(), first.Pidfile.SkipReason())
	}
	if first.EngineID.ID == "" {
		t.Fatal("no engine ID")
	}
	second := boot(t, cfg, paths)
	if second.EngineID != first.EngineID {
		t.Errorf("engine ID changed across boots: %q then %q", first.EngineID.ID, second.EngineID.ID)
	}
}

func TestModuleRefusesWhileAnotherDaemonRuns(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	cfg := &config.Config{DataRoot: filepath.Join(dir, "root"), ExecRoot: filepath.Join(dir, "exec"), Pidfile: filepath.Join(dir, "wharfd.pid")}
	os.WriteFile(cfg.Pidfile, []byte(strconv.Itoa(livePID(t))), 0o644)
	app := fx.New(
		fx.NopLogger,
		Module.Fx(nil),
		fx.Supply(cfg, zap.NewNop()),
		fx.Invoke(func(DataRoot) {}),
	)
	if err := app.Err(); err == nil {
		t.Fatal("booted while another daemon holds the pidfile")
	}
	if _, err := os.Stat(cfg.DataRoot); !os.IsNotExist(err) {
		t.Errorf("data root created although the pidfile refused the boot (err %v)", err)
	}
}
