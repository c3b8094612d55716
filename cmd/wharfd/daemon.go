package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

// forceExitSignals is how many SIGINT/SIGTERM end the daemon at once
// without waiting for the stages to stop, as dockerd's trap does.
const forceExitSignals = 3

// serve boots the pipeline and serves until SIGINT or SIGTERM (or a stage
// asks fx to shut down), then stops the stages in reverse order within the
// configured shutdown timeout.
func serve(flags *config.Flags, stderr io.Writer) error {
	level, err := config.FlagsLogLevel(flags)
	if err != nil {
		return &usageError{err: err}
	}
	atom := zap.NewAtomicLevelAt(level)
	log := newLogger(logFormat(flags), atom, stderr)
	defer log.Sync() //nolint:errcheck // stderr cannot usefully fail here

	// A broken pipe on the log (a journald restart, a test that went
	// away) must not kill the daemon with its containers: as dockerd,
	// ignore SIGPIPE; the write just fails.
	signal.Ignore(syscall.SIGPIPE)

	// Signals are caught before anything starts, so that a SIGTERM during
	// the boot cancels it instead of killing the process half-started.
	sigs := make(chan os.Signal, forceExitSignals)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	b, err := newBoot(flags, log, atom)
	if err != nil {
		return err
	}
	app := b.app

	startCtx, cancelStart := context.WithCancel(context.Background())
	defer cancelStart()
	go func() {
		select {
		case sig := <-sigs:
			log.Info("signal during boot, cancelling", zap.Stringer("signal", sig))
			cancelStart()
			sigs <- sig // counts towards the forced exit below
		case <-startCtx.Done():
		}
	}()
	if err := app.Start(startCtx); err != nil {
		return b.fail(err, log)
	}
	cancelStart()

	var code int
	select {
	case sig := <-sigs:
		log.Info("stopping", zap.Stringer("signal", sig))
		sigs <- sig
	case sd := <-app.Wait():
		log.Info("stopping", zap.Int("exit_code", sd.ExitCode))
		code = sd.ExitCode
	}
	return stop(app, b.cfg.ShutdownTimeout, sigs, code, log)
}

// boot is one fx app of the daemon's graph, with its recorder.
type boot struct {
	app *fx.App
	rec *pipeline.Recorder
	cfg *config.Config // filled once the config stage has run
}

// newBoot builds the fx app of the whole daemon graph; nothing runs until
// app.Start. A wiring error comes back as the recorder explains it.
func newBoot(flags *config.Flags, log *zap.Logger, atom zap.AtomicLevel) (*boot, error) {
	g, err := bootGraph(flags)
	if err != nil {
		return nil, err
	}
	b := &boot{rec: pipeline.NewRecorder(g, log)}
	b.app = fx.New(
		fx.WithLogger(func() fxevent.Logger { return b.rec }),
		fx.Supply(log, atom, b.rec, g),
		g.Options(b.rec),
		fx.Invoke(g.Root(b.rec)),
		fx.Populate(&b.cfg),
		// The boot is bounded by its own stages (a pull, a restore); the
		// shutdown by --shutdown-timeout, applied in stop.
		fx.StartTimeout(time.Hour),
	)
	if err := b.app.Err(); err != nil {
		return nil, b.fail(err, log)
	}
	return b, nil
}

// fail turns a failed boot's error into the StageError naming the stage,
// after undoing what the constructors made that no stop hook undid
// (pipeline.Recorder.Abort), so a failed boot leaves nothing behind.
func (b *boot) fail(err error, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), config.DefaultShutdownTimeout)
	defer cancel()
	if aerr := b.rec.Abort(ctx); aerr != nil {
		log.Error("undo failed boot", zap.Error(aerr))
	}
	return b.rec.Err(err)
}

// stop stops the app within timeout, or exits at once on the third signal.
func stop(app *fx.App, timeout time.Duration, sigs <-chan os.Signal, code int, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Stop(ctx) }()
	count := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			log.Info("stopped")
			if code != 0 {
				return &exitError{code: code, msg: fmt.Sprintf("stopped with exit code %d", code)}
			}
			return nil
		case sig := <-sigs:
			count++
			if count >= forceExitSignals {
				s, _ := sig.(syscall.Signal)
				return &exitError{code: 128 + int(s), msg: fmt.Sprintf("forcing shutdown without cleanup: %d signals received", count)}
			}
		}
	}
}

// logFormat is the log format in force: like dockerd, which configures
// its logging from the loaded configuration before anything else, the
// logger must know daemon.json's "log-format" before the first stage logs.
// The configuration is read here for that alone; stage 2.1 reads it again
// inside the graph, where a broken file is a stage failure like any
// other, so a file that does not load here leaves the flag's format.
func logFormat(flags *config.Flags) string {
	if cfg, err := config.Load(flags); err == nil {
		return cfg.LogFormat
	}
	return flags.Options.LogFormat
}

// newLogger returns the daemon's zap logger: text (console) or JSON lines
// on stderr, at the given level.
func newLogger(format string, level zap.AtomicLevel, w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	var encoder zapcore.Encoder
	if format == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), level))
}
