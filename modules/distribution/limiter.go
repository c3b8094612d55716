package distribution

import (
	"context"
	"sync"
)

// limiter is a counting semaphore whose limit may change while it is
// held: a lower limit lets holders finish and admits no one until the
// count is below it.
type limiter struct {
	mu      sync.Mutex
	limit   int
	active  int
	waiters []chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{limit: max(n, 1)} }

// acquire takes a slot, waiting until one is free or ctx ends.
func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.active < l.limit && len(l.waiters) == 0 {
		l.active++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Granted meanwhile: give the slot back.
		l.active--
		l.wake()
		return ctx.Err()
	}
}

// release gives a slot back.
func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	l.wake()
}

// setLimit changes the number of slots (at least 1).
func (l *limiter) setLimit(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(n, 1)
	l.wake()
}

// wake grants slots to waiters, first come first served. Called with mu
// held.
func (l *limiter) wake() {
	for l.active < l.limit && len(l.waiters) > 0 {
		l.active++
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
	}
}

// tryAcquire takes a slot if one is free at once.
func (l *limiter) tryAcquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active < l.limit && len(l.waiters) == 0 {
		l.active++
		return true
	}
	return false
}
