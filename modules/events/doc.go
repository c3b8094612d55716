// Package events is the daemon's event bus, seed step 3.18 events: the
// stream behind GET /events.
//
// Events are the Engine API's own types (github.com/moby/moby/api/types/events),
// so the API serialises them unchanged. Bus.Log stamps an event with the
// local scope and the time, keeps it in a bounded ring of recent events
// (for since/until) and hands it to every subscriber whose Filter matches.
// Subscribers have bounded buffers: one that does not keep up is dropped
// (its channel closed) rather than slowing the daemon. Filters follow
// dockerd's rules (type, event, container, image, volume, network, label,
// daemon, scope, …; see ParseFilter).
//
// The daemon logs a reload event (type daemon, action reload, actor the
// engine ID, the reloadable options as attributes) after each reload that
// changed the configuration.
package events
