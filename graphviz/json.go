package graphviz

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/wharfd/wharfd/pipeline"
)

// JSON writes g to w as one JSON object, indented by two spaces and ending
// in a newline. rep may be nil. The field names are stable:
//
//	{
//	  "modules":  ["config", "host", …],           module names, declaration order
//	  "stages": [{                                  declaration order
//	    "id": "3.11 graphdriver", "step": "3.11",   step "" when the stage has none
//	    "name": "graphdriver", "module": "storage", "doc": "…",
//	    "needs": [{"type": "*config.Config",        pipeline.Key.String()
//	               "optional": false,               `optional:"true"` in an fx.In struct
//	               "external": false}],             supplied from outside the stages
//	    "provides": ["storage.Store"],
//	    // with a report that has the stage:
//	    "state": "ok",                              pending|running|ok|failed|skipped
//	    "reason": "…",                              skip reason or error; omitted if ""
//	    "critical": true,                           on the critical path
//	    "start": "…", "end": "…",                   RFC 3339; omitted if never
//	    "duration": 30200000,                       constructor + onStart, nanoseconds
//	    "constructor": 30000000, "onStart": 200000, "onStop": 0
//	  }],
//	  "edges": [{"from": "2.1 config", "to": "3.11 graphdriver",
//	             "type": "*config.Config", "optional": false}],   sorted by from, to, type
//	  "external": ["fx.Lifecycle", …],              values from outside the stages
//	  "criticalPath": ["2.1 config", …],            stage IDs; [] without a report
//	  // with a report:
//	  "boot": {"done": true, "total": 41000000,    nanoseconds
//	           "failed": "3.11 graphdriver",        omitted if none
//	           "error": "…",                        omitted if none
//	           "notStarted": ["3.14 imagedb", …]}   [] if none
//	}
//
// Durations are nanoseconds, as in pipeline.Report's own JSON. Lists are
// never null. Stages a report has and the graph lacks are left out. The
// output is deterministic byte for byte. JSON returns an error if g is nil
// or writing to w fails.
func JSON(w io.Writer, g *pipeline.Graph, rep *pipeline.Report) error {
	if g == nil {
		return errNoGraph
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Go types such as <-chan T and func() read better unescaped.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(newView(g, rep).document()); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// jsonGraph is the document JSON writes; see JSON for its shape.
type jsonGraph struct {
	Modules      []string    `json:"modules"`
	Stages       []jsonStage `json:"stages"`
	Edges        []jsonEdge  `json:"edges"`
	External     []string    `json:"external"`
	CriticalPath []string    `json:"criticalPath"`
	Boot         *jsonBoot   `json:"boot,omitempty"`
}

type jsonStage struct {
	ID       string     `json:"id"`
	Step     string     `json:"step"`
	Name     string     `json:"name"`
	Module   string     `json:"module"`
	Doc      string     `json:"doc"`
	Needs    []jsonNeed `json:"needs"`
	Provides []string   `json:"provides"`
	*jsonRun
}

type jsonNeed struct {
	Type     string `json:"type"`
	Optional bool   `json:"optional"`
	External bool   `json:"external"`
}

// jsonRun is what the report says of one stage; embedded by pointer so
// that its fields are absent without a report.
type jsonRun struct {
	State       pipeline.State `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	Critical    bool           `json:"critical"`
	Start       time.Time      `json:"start,omitzero"`
	End         time.Time      `json:"end,omitzero"`
	Duration    time.Duration  `json:"duration"`
	Constructor time.Duration  `json:"constructor"`
	OnStart     time.Duration  `json:"onStart"`
	OnStop      time.Duration  `json:"onStop"`
}

type jsonEdge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Type     string `json:"type"`
	Optional bool   `json:"optional"`
}

type jsonBoot struct {
	Done       bool          `json:"done"`
	Total      time.Duration `json:"total"`
	Failed     string        `json:"failed,omitempty"`
	Error      string        `json:"error,omitempty"`
	NotStarted []string      `json:"notStarted"`
}

// document builds the JSON document.
func (v *view) document() jsonGraph {
	d := jsonGraph{
		Modules:      []string{},
		Stages:       make([]jsonStage, 0, len(v.g.Nodes)),
		Edges:        []jsonEdge{},
		External:     make([]string, 0, len(v.g.External)),
		CriticalPath: []string{},
	}
	for _, m := range v.g.Modules {
		d.Modules = append(d.Modules, m.Name)
	}
	for _, n := range v.g.Nodes {
		s := jsonStage{
			ID: n.ID(), Step: n.Step, Name: n.Name, Module: n.Module(), Doc: n.Doc,
			Needs:    make([]jsonNeed, 0, len(n.Needs)),
			Provides: make([]string, 0, len(n.Provides)),
		}
		for _, need := range n.Needs {
			s.Needs = append(s.Needs, jsonNeed{Type: need.String(), Optional: need.Optional, External: v.external[need.Key]})
		}
		for _, k := range n.Provides {
			s.Provides = append(s.Provides, k.String())
		}
		if r, ok := v.stage(n.ID()); ok {
			s.jsonRun = &jsonRun{
				State: r.State, Reason: r.Reason, Critical: v.critical[n.ID()],
				Start: r.Start, End: r.End,
				Duration: r.Duration(), Constructor: r.Constructor, OnStart: r.OnStart, OnStop: r.OnStop,
			}
		}
		d.Stages = append(d.Stages, s)
	}
	for _, e := range v.edges() {
		d.Edges = append(d.Edges, jsonEdge{From: e.From, To: e.To, Type: e.Label, Optional: e.Optional})
	}
	for _, k := range v.g.External {
		d.External = append(d.External, k.String())
	}
	if v.rep == nil {
		return d
	}
	d.CriticalPath = append(d.CriticalPath, v.rep.CriticalPath...)
	d.Boot = &jsonBoot{
		Done: v.rep.Done, Total: v.rep.Total,
		Failed: v.rep.Failed, Error: v.rep.Error,
		NotStarted: append([]string{}, v.rep.NotStarted...),
	}
	return d
}
