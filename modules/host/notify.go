package host

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

// Notifier tells systemd how the daemon is doing (sd_notify). Every
// method is a no-op when NOTIFY_SOCKET is unset, and a failed send is
// logged, never returned: systemd's view is informative, the daemon's
// work does not depend on it. It is safe for concurrent use.
type Notifier struct {
	log    *zap.Logger
	notify func(state string) (bool, error)

	mu     sync.Mutex
	ready  bool
	failed bool // a send failed already: later failures log at debug
}

// NotifierParams are the inputs of the systemd-notify stage.
type NotifierParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Logger    *zap.Logger
	// Recorder, when supplied, reports each stage as it begins; the
	// notifier turns that into STATUS= lines.
	Recorder *pipeline.Recorder `optional:"true"`
	// Live, when supplied, tells of configuration reloads (RELOADING=1,
	// then READY=1).
	Live *config.Live `optional:"true"`
}

// NewNotifier is the systemd-notify stage. It sends
// "STATUS=starting <stage> (n/total)" as each later stage begins,
// RELOADING=1 then READY=1 around each reload that changed the
// configuration (once the daemon is ready), and STOPPING=1 from its
// OnStop hook, which fx runs late in the shutdown since the notifier is
// one of the first stages. READY=1 is the API server's to send (Ready),
// once it serves.
func NewNotifier(p NotifierParams) *Notifier {
	n := newNotifier(p.Logger.With(zap.String("module", "host")), daemon.SdNotify)
	if p.Recorder != nil {
		p.Recorder.OnProgress(func(id string, i, total int) {
			n.Status(fmt.Sprintf("starting %s (%d/%d)", id, i, total))
		})
	}
	unsubscribe := func() {}
	if p.Live != nil {
		// RELOADING=1 as each reload begins, READY=1 once it is over,
		// applied or refused: the daemon serves on either way.
		unsubscribe = p.Live.OnReload(n.Reloading, func(error) { n.Reloaded() })
	}
	p.Lifecycle.Append(fx.Hook{
		OnStop: func(context.Context) error {
			unsubscribe()
			n.Stopping()
			return nil
		},
	})
	return n
}

func newNotifier(log *zap.Logger, notify func(unset bool, state string) (bool, error)) *Notifier {
	return &Notifier{log: log, notify: func(state string) (bool, error) { return notify(false, state) }}
}

// Ready sends READY=1: the daemon serves its API. The API server calls it
// once its listeners serve.
func (n *Notifier) Ready() {
	n.mu.Lock()
	n.ready = true
	n.mu.Unlock()
	n.send(daemon.SdNotifyReady + "\nSTATUS=serving the API")
}

// Reloading sends RELOADING=1 with the monotonic time systemd asks for:
// the configuration is being reloaded. Reloaded must follow. Before the
// daemon is ready it does nothing (READY=1 will come from Ready).
func (n *Notifier) Reloading() {
	if !n.isReady() {
		return
	}
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading the configuration")
}

// Reloaded sends READY=1 after a reload, if the daemon was ready.
func (n *Notifier) Reloaded() {
	if !n.isReady() {
		return
	}
	n.send(daemon.SdNotifyReady + "\nSTATUS=serving the API")
}

// Stopping sends STOPPING=1: the daemon is shutting down.
func (n *Notifier) Stopping() {
	n.mu.Lock()
	n.ready = false
	n.mu.Unlock()
	n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping")
}

// Status sends STATUS=<text>, the one-line status systemctl shows.
// Newlines in text become spaces.
func (n *Notifier) Status(text string) {
	n.send("STATUS=" + strings.ReplaceAll(text, "\n", " "))
}

func (n *Notifier) isReady() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ready
}

// send sends state, logging a failure: the first as a warning, the
// rest (systemd gone, a stale NOTIFY_SOCKET) at debug level.
func (n *Notifier) send(state string) {
	_, err := n.notify(state)
	if err == nil {
		return
	}
	n.mu.Lock()
	first := !n.failed
	n.failed = true
	n.mu.Unlock()
	log := n.log.Debug
	if first {
		log = n.log.Warn
	}
	log("systemd notification not sent", zap.String("state", state), zap.Error(err))
}
