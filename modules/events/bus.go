package events

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

const (
	// DefaultHistory is how many recent events the bus keeps for
	// subscribers that ask for past events (since/until).
	DefaultHistory = 1024
	// DefaultBuffer is how many events a subscriber may fall behind
	// before it is dropped.
	DefaultBuffer = 256
	// scopeLocal is the scope of the engine's own events.
	scopeLocal = "local"
)

// Bus is the event bus: a ring of recent events and a set of filtered
// subscribers. Log never blocks on a subscriber. It is safe for
// concurrent use.
type Bus struct {
	now    func() time.Time
	buffer int

	mu     sync.Mutex
	ring   []events.Message // oldest first once full: ring[head:] + ring[:head]
	head   int
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch     chan events.Message
	filter Filter
	until  int64 // UnixNano; 0 for none
}

// New returns a bus keeping the last history events, whose subscribers
// may fall buffer events behind before they are dropped (values below 1
// are taken as 1).
func New(history, buffer int) *Bus {
	return &Bus{
		now:    time.Now,
		buffer: max(buffer, 1),
		ring:   make([]events.Message, 0, max(history, 1)),
		subs:   map[*subscriber]struct{}{},
	}
}

// BusParams are the inputs of stage 3.18 events.
type BusParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Logger    *zap.Logger
	// EngineID is the actor of the daemon's own events.
	EngineID host.EngineID
	// Live, when supplied, tells of reloads, each logged as a reload
	// event.
	Live *config.Live `optional:"true"`
}

// NewBus is stage 3.18 events: a bus with DefaultHistory and
// DefaultBuffer that logs a daemon reload event after each successful
// reload, as dockerd does whether or not anything changed (see
// ReloadAttributes). Its OnStop hook ends
// every subscription (closing the channels) so that /events streams end.
func NewBus(p BusParams) *Bus {
	b := New(DefaultHistory, DefaultBuffer)
	log := p.Logger.With(zap.String("module", "events"))
	unsubscribe := func() {}
	if p.Live != nil {
		unsubscribe = p.Live.Subscribe(func(_, cfg *config.Config, changed []string) {
			b.Log(events.DaemonEventType, events.ActionReload, events.Actor{
				ID:         p.EngineID.ID,
				Attributes: ReloadAttributes(cfg, hostname(log)),
			})
		})
	}
	p.Lifecycle.Append(fx.Hook{
		OnStop: func(context.Context) error {
			unsubscribe()
			b.Close()
			return nil
		},
	})
	return b
}

func hostname(log *zap.Logger) string {
	name, err := os.Hostname()
	if err != nil {
		log.Warn("hostname unknown", zap.Error(err))
		return ""
	}
	return name
}

// Log records an event: typ and action as the Engine API defines them,
// actor the object (its ID and attributes; the attributes map is kept, so
// the caller must not change it afterwards). It stamps Scope "local",
// Time (seconds) and TimeNano (nanoseconds since the epoch, UTC), keeps
// the event in the ring (the oldest falling out) and sends it to every
// subscriber whose filter matches; a subscriber whose buffer is full is
// dropped and its channel closed. Log never blocks on subscribers. After
// Close events are still kept in the ring.
func (b *Bus) Log(typ events.Type, action events.Action, actor events.Actor) {
	now := b.now().UTC()
	m := events.Message{
		Type:     typ,
		Action:   action,
		Actor:    actor,
		Scope:    scopeLocal,
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < cap(b.ring) {
		b.ring = append(b.ring, m)
	} else {
		b.ring[b.head] = m
		b.head = (b.head + 1) % len(b.ring)
	}
	for s := range b.subs {
		if (s.until != 0 && m.TimeNano > s.until) || !s.filter.Match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			// Too slow: dropped, so that one reader cannot hold up
			// the daemon or the others.
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscribe returns the recorded events that match filter and lie
// between since and until, oldest first, and a channel of the matching
// events logged from now on, with no gap or overlap between the two.
//
// As dockerd: past events are returned only when since or until is set
// (a zero time is unset); a zero until takes every recorded event from
// since on; events after until are not sent on the channel either. The
// channel is closed by cancel, by Close, or when the subscriber falls
// DefaultBuffer events behind; cancel may be called more than once. A
// zero Filter matches every event. Ending the stream at until is the
// caller's.
func (b *Bus) Subscribe(since, until time.Time, filter Filter) (past []events.Message, live <-chan events.Message, cancel func()) {
	s := &subscriber{ch: make(chan events.Message, b.buffer), filter: filter}
	var sinceNano int64
	if !since.IsZero() {
		sinceNano = since.UnixNano()
	}
	if !until.IsZero() {
		s.until = until.UnixNano()
	}

	b.mu.Lock()
	if !since.IsZero() || !until.IsZero() {
		n := len(b.ring)
		for i := range n {
			m := b.ring[(b.head+i)%n]
			if m.TimeNano < sinceNano || (s.until != 0 && m.TimeNano > s.until) || !filter.Match(m) {
				continue
			}
			past = append(past, m)
		}
	}
	if b.closed {
		close(s.ch)
	} else {
		b.subs[s] = struct{}{}
	}
	b.mu.Unlock()

	cancel = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
	return past, s.ch, cancel
}

// Subscribers returns the number of live subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription, closing the channels; later
// subscriptions get a closed channel (and their past events).
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}
