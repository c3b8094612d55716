package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

// BenchmarkLog measures one Log: with no subscriber, with one that takes
// every event (read after each Log), and with that one plus 15 whose
// container filter does not match.
func BenchmarkLog(b *testing.B) {
	for _, subs := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			bus := New(DefaultHistory, DefaultBuffer)
			var all <-chan events.Message
			for i := range subs {
				var args map[string][]string
				if i > 0 {
					args = map[string][]string{"container": {fmt.Sprintf("other%d", i)}}
				}
				f, _ := ParseFilter(args)
				_, live, cancel := bus.Subscribe(time.Time{}, time.Time{}, f)
				defer cancel()
				if i == 0 {
					all = live
				}
			}
			actor := events.Actor{ID: "4d1e0c5a7b9f", Attributes: map[string]string{"name": "web", "image": "busybox:latest"}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				bus.Log(events.ContainerEventType, events.ActionStart, actor)
				if all != nil {
					<-all
				}
			}
		})
	}
}

// BenchmarkSubscribeSince measures a subscription asking for the whole
// ring of past events through an image filter.
func BenchmarkSubscribeSince(b *testing.B) {
	bus := New(DefaultHistory, DefaultBuffer)
	for i := range DefaultHistory {
		bus.Log(events.ContainerEventType, events.ActionStart, events.Actor{ID: fmt.Sprint(i), Attributes: map[string]string{"image": "busybox:latest"}})
	}
	f, _ := ParseFilter(map[string][]string{"image": {"busybox"}})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		past, _, cancel := bus.Subscribe(time.Unix(1, 0), time.Time{}, f)
		cancel()
		if len(past) != DefaultHistory {
			b.Fatalf("%d past events", len(past))
		}
	}
}
