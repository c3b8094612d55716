package config

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// ReloadableKeys returns the daemon.json keys a reload applies, as in
// dockerd; a change to any other key needs a restart.
func ReloadableKeys() []string { return slices.Clone(reloadableKeys[:]) }

var reloadableKeys = [...]string{
	"debug",
	"labels",
	"live-restore",
	"max-concurrent-downloads",
	"max-concurrent-uploads",
	"max-download-attempts",
	"shutdown-timeout",
	"insecure-registries",
	"registry-mirrors",
}

// Subscriber is told of each successful reload: the previous and the new
// configuration, and the daemon.json keys that changed (a subset of
// ReloadableKeys, in that order; empty when nothing did, as dockerd still
// reports such a reload), which it must not modify.
type Subscriber func(old, new *Config, changed []string)

// Live is the current configuration of a running daemon. It starts as the
// boot configuration; Reload (run on SIGHUP) replaces it with one where
// the reloadable options take their new values. Every *Config it hands
// out is read-only: a reload makes a new one.
//
// The *Config of stage 2.1 is the boot configuration and never changes;
// a component that honours reloads takes *Live and subscribes.
type Live struct {
	flags *Flags
	log   *zap.Logger
	level zap.AtomicLevel // zero when not supplied

	reloading sync.Mutex // serialises Reload

	mu       sync.RWMutex
	cur      *Config
	subs     []subscription
	watchers []reloadWatch
	next     int

	sig  chan os.Signal
	done chan struct{}
}

type subscription struct {
	id int
	fn Subscriber
}

type reloadWatch struct {
	id     int
	before func()
	after  func(error)
}

// LiveParams are the inputs of the reload stage.
type LiveParams struct {
	fx.In

	Flags     *Flags
	Config    *Config
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	// Level, when supplied, is the daemon logger's level; a reload that
	// changes debug sets it.
	Level zap.AtomicLevel `optional:"true"`
}

// NewLive is the reload stage: it provides the live configuration and
// appends a hook that, while the daemon runs, reloads it on each SIGHUP.
// A failed reload is logged and the previous configuration stays.
func NewLive(p LiveParams) *Live {
	l := &Live{
		flags: p.Flags,
		log:   p.Logger.With(zap.String("module", "config")),
		level: p.Level,
		cur:   p.Config,
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { l.watch(); return nil },
		OnStop:  func(context.Context) error { l.unwatch(); return nil },
	})
	return l
}

// Current returns the configuration in force.
func (l *Live) Current() *Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cur
}

// Subscribe registers fn to be called after each successful reload, and
// returns a function that unregisters it.
// Subscribers run one after another, in subscription order, on the
// goroutine that reloads; they may call Current but not Reload.
func (l *Live) Subscribe(fn Subscriber) (unsubscribe func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	l.subs = append(l.subs, subscription{id: id, fn: fn})
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.subs = slices.DeleteFunc(l.subs, func(s subscription) bool { return s.id == id })
	}
}

// OnReload registers before, called as every reload begins (before
// daemon.json is read), and after, called with its outcome (nil, or the
// error that kept the previous configuration), whether or not anything
// changed — systemd's RELOADING=1 … READY=1 bracket a reload this way.
// Either may be nil. It returns a function that unregisters both.
func (l *Live) OnReload(before func(), after func(error)) (unsubscribe func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	l.watchers = append(l.watchers, reloadWatch{id: id, before: before, after: after})
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.watchers = slices.DeleteFunc(l.watchers, func(w reloadWatch) bool { return w.id == id })
	}
}

// Reload re-reads daemon.json with the same command line (so conflicts
// are still refused and flags still win), loads, validates and verifies
// it as at boot, then applies the reloadable options that changed, sets
// the log level if debug changed, tells the subscribers and logs
// "reloaded configuration". Changes to other options are logged as
// needing a restart and otherwise ignored. On error nothing changes.
func (l *Live) Reload() (err error) {
	l.reloading.Lock()
	defer l.reloading.Unlock()

	l.mu.RLock()
	watch := slices.Clone(l.watchers)
	l.mu.RUnlock()
	for _, w := range watch {
		if w.before != nil {
			w.before()
		}
	}
	defer func() {
		for _, w := range watch {
			if w.after != nil {
				w.after(err)
			}
		}
	}()

	loaded, err := Load(l.flags)
	if err == nil {
		_, err = Verify(loaded)
	}
	if err != nil {
		return fmt.Errorf("reload configuration: %w", err)
	}
	old := l.Current()
	next, changed := applyReloadable(old, loaded)
	ignored := needsRestart(old, loaded)

	l.mu.Lock()
	if len(changed) > 0 {
		l.cur = next
	}
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	if slices.Contains(changed, "debug") && l.level != (zap.AtomicLevel{}) {
		l.level.SetLevel(next.ZapLevel())
	}
	for _, s := range subs {
		s.fn(old, l.Current(), changed)
	}
	if len(ignored) > 0 {
		l.log.Warn("configuration changes need a restart", zap.Strings("keys", ignored))
	}
	l.log.Info("reloaded configuration", zap.Strings("changed", changed))
	return nil
}

// watch starts reloading on SIGHUP.
func (l *Live) watch() {
	l.sig = make(chan os.Signal, 1)
	l.done = make(chan struct{})
	signal.Notify(l.sig, syscall.SIGHUP)
	go func() {
		defer close(l.done)
		for range l.sig {
			if err := l.Reload(); err != nil {
				l.log.Error("keeping the previous configuration", zap.Error(err))
			}
		}
	}()
}

// unwatch stops reloading on SIGHUP and waits for a reload in progress.
// It tolerates a watch that never started.
func (l *Live) unwatch() {
	if l.sig == nil {
		return
	}
	signal.Stop(l.sig)
	close(l.sig)
	<-l.done
	l.sig = nil
}

// applyReloadable returns a copy of old in which the reloadable options
// take loaded's values, and the keys that changed.
func applyReloadable(old, loaded *Config) (*Config, []string) {
	next := old.Clone()
	var changed []string
	for _, k := range reloadableKeys {
		d := directives[k]
		src := reflect.ValueOf(d.field(loaded)).Elem()
		dst := reflect.ValueOf(d.field(next)).Elem()
		if sameValue(src, dst) {
			continue
		}
		dst.Set(src)
		changed = append(changed, k)
	}
	return next, changed
}

// needsRestart returns the keys, other than the reloadable ones, whose
// value differs between old and loaded.
func needsRestart(old, loaded *Config) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(directives)) {
		if slices.Contains(reloadableKeys[:], k) {
			continue
		}
		d := directives[k]
		if !sameValue(reflect.ValueOf(d.field(old)).Elem(), reflect.ValueOf(d.field(loaded)).Elem()) {
			keys = append(keys, k)
		}
	}
	return keys
}

// sameValue compares two option values, an empty list or map being the
// same as none.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
