package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// TestStopForcedByThirdSignal: a stop hook that hangs is abandoned on the
// third SIGTERM, with exit status 128+15, as dockerd's trap does.
func TestStopForcedByThirdSignal(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	app := fx.New(fx.NopLogger, fx.Invoke(func(lc fx.Lifecycle) {
		lc.Append(fx.StopHook(func(ctx context.Context) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}))
	}))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, forceExitSignals)
	for range forceExitSignals {
		sigs <- syscall.SIGTERM
	}
	err := stop(app, time.Hour, sigs, 0, zap.NewNop())
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 128+int(syscall.SIGTERM) {
		t.Fatalf("stop = %v, want a forced exit with status %d", err, 128+int(syscall.SIGTERM))
	}
}

// TestStopCleanAndExitCode: a clean stop returns nil, or the exit code a
// stage asked for through fx.Shutdowner.
func TestStopCleanAndExitCode(t *testing.T) {
	tests := []struct {
		name     string
		giveCode int
		wantErr  bool
	}{
		{name: "clean", giveCode: 0},
		{name: "shutdowner exit code", giveCode: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopped := false
			app := fx.New(fx.NopLogger, fx.Invoke(func(lc fx.Lifecycle) {
				lc.Append(fx.StopHook(func() { stopped = true }))
			}))
			if err := app.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			err := stop(app, time.Second, make(chan os.Signal), tt.giveCode, zap.NewNop())
			if !stopped {
				t.Error("stop hook did not run")
			}
			var ee *exitError
			if tt.wantErr != (err != nil) || (tt.wantErr && (!errors.As(err, &ee) || ee.code != tt.giveCode)) {
				t.Errorf("stop = %v, want exit code %d", err, tt.giveCode)
			}
		})
	}
}
