package events

import "github.com/wharfd/wharfd/pipeline"

// Module declares the event bus stage.
var Module = pipeline.Module("events",
	pipeline.Stage{Step: "3.18", Name: "events", Doc: "event bus behind /events: ring of recent events, filtered subscribers, reload events", Ctor: NewBus},
)
