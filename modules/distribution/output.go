package distribution

import (
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// output delivers progress messages to the client's callback from one
// goroutine, in order, so that reporters (downloads shared between pulls,
// copy progress) never wait on a slow client.
type output struct {
	fn     func(jsonstream.Message)
	mu     sync.Mutex
	queue  []jsonstream.Message
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newOutput(fn func(jsonstream.Message)) *output {
	o := &output{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go o.loop()
	return o
}

func (o *output) loop() {
	defer close(o.done)
	for range o.wake {
		for {
			o.mu.Lock()
			q := o.queue
			o.queue = nil
			closed := o.closed
			o.mu.Unlock()
			for _, m := range q {
				if o.fn != nil {
					o.fn(m)
				}
			}
			if len(q) == 0 {
				if closed {
					return
				}
				break
			}
		}
	}
}

// send queues m; after close it is dropped.
func (o *output) send(m jsonstream.Message) {
	o.mu.Lock()
	if !o.closed {
		o.queue = append(o.queue, m)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// status queues {"status": status, "id": id}.
func (o *output) status(id, status string) {
	o.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{}})
}

// line queues a status line of the operation as a whole.
func (o *output) line(status string) { o.send(jsonstream.Message{Status: status}) }

// progress queues a byte progress line for id.
func (o *output) progress(id, status string, current, total int64) {
	o.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{Current: current, Total: total}})
}

// close delivers what is queued and stops.
func (o *output) close() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		<-o.done
		return
	}
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	<-o.done
}
